#include "completion.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <utility>
#include <vector>

namespace unloc_cli {

namespace {

const char* const flag = "\x01";  // an option without a value

// What an option's value may be: "@file", the choices of its IsMember check
// (CLI11 shows them in the type name, `TEXT:{a,b}`), or nothing to offer.
std::string values_of(const CLI::Option& option) {
  if (option.get_expected_max() == 0) return flag;
  const std::string type = option.get_type_name();
  if (type == "FILE") return "@file";
  const auto open = type.find('{');
  const auto close = type.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return "";
  std::string choices = type.substr(open + 1, close - open - 1);
  for (auto& c : choices) c = c == ',' ? ' ' : c;
  return choices;
}

struct tables {
  std::ostringstream words;    // path -> its commands (and a positional's choices)
  std::ostringstream options;  // path -> every option valid there
  std::map<std::string, std::map<std::string, std::vector<std::string>>>
      uses;  // option -> values -> paths
};

// `visible`: the options a command's parents let fall through to it; its own shadow them
// (after access-log, --project is a switch).
void walk(const CLI::App& app, const std::string& path, std::map<std::string, std::string> visible,
          tables& out) {
  std::string words;
  for (const CLI::Option* option : app.get_options()) {
    const std::string values = values_of(*option);
    if (option->get_positional()) {
      if (values != flag && !values.empty()) words += values + " ";
      continue;
    }
    for (const auto& name : option->get_lnames()) visible["--" + name] = values;
    for (const auto& name : option->get_snames()) visible["-" + name] = values;
  }
  const auto commands =
      app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
  for (const CLI::App* sub : commands) words += sub->get_name() + " ";
  std::string options;
  for (const auto& [name, values] : visible) {
    options += name + " ";
    out.uses[name][values].push_back(path);
  }
  if (!words.empty()) words.pop_back();  // the last space
  if (!options.empty()) options.pop_back();
  if (!words.empty()) out.words << "    '" << path << "') echo '" << words << "' ;;\n";
  out.options << "    '" << path << "') echo '" << options << "' ;;\n";
  for (const CLI::App* sub : commands) {
    walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), visible, out);
  }
}

}  // namespace

std::string completion_script(const CLI::App& app, const std::string& shell) {
  tables t;
  walk(app, "", {}, t);
  // An option means the same on most paths: one `*'|--option'` pattern says so,
  // after the paths where it means something else (after access-log, --project).
  std::map<std::string, std::string> specific, general;  // values -> case patterns
  for (const auto& [name, meanings] : t.uses) {
    const auto most = std::max_element(
        meanings.begin(), meanings.end(),
        [](const auto& a, const auto& b) { return a.second.size() < b.second.size(); });
    for (const auto& [values, paths] : meanings) {
      if (values == most->first) {
        if (values != flag) general[values].append("*'|").append(name).append("'|");
        continue;
      }
      for (const auto& path : paths) {
        specific[values].append("'").append(path).append("|").append(name).append("'|");
      }
    }
  }
  std::ostringstream values;
  for (auto* patterns : {&specific, &general}) {
    for (auto& [choices, keys] : *patterns) {
      keys.pop_back();  // the last '|'
      values << "    " << keys << ") " << (choices == flag ? "return 1" : "echo '" + choices + "'")
             << " ;;\n";
    }
  }
  std::ostringstream script;
  if (shell == "zsh") {
    script << "#compdef unloc\n"
              "# unloc completion for zsh; load it after compinit: source <(unloc completion zsh)\n"
              "autoload -U +X bashcompinit && bashcompinit\n";
  } else {
    script << "# unloc completion for bash; load it: source <(unloc completion bash)\n";
  }
  script << "_unloc_words() {\n  case $1 in\n"
         << t.words.str() << "  esac\n}\n"
         << "_unloc_options() {\n  case $1 in\n"
         << t.options.str() << "  esac\n}\n"
         << "# The values of an option that takes one (@file: a file name); fails for a flag.\n"
            "_unloc_values() {\n  case $1 in\n"
         << values.str() << "    *) return 1 ;;\n  esac\n}\n"
         << R"sh(_unloc() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path='' word i values
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    if [[ $word == -- ]]; then
      return 0
    elif [[ $word == -* ]]; then
      # an option's value is the next word, unless given as --option=value
      [[ $word != *=* ]] && _unloc_values "$path|$word" >/dev/null && ((i++))
    elif [[ " $(_unloc_words "$path") " == *" $word "* ]]; then
      path=${path:+$path }$word
    fi
  done
  if ((COMP_CWORD > 1)) && [[ $prev == -* ]] && values=$(_unloc_values "$path|$prev"); then
    if [[ $values == @file ]]; then
      COMPREPLY=($(compgen -f -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$values" -- "$cur"))
    fi
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_unloc_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_unloc_words "$path")" -- "$cur"))
  fi
}
complete -F _unloc unloc
)sh";
  return script.str();
}

}  // namespace unloc_cli
