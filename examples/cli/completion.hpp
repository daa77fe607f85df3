#pragma once

// `unloc completion bash|zsh`: a completion script made from the parser's own
// tree of commands and options, so that it cannot fall behind them.

#include <string>

namespace CLI {  // NOLINT(readability-identifier-naming): CLI11's own name
class App;
}

namespace unloc_cli {

/// The completion script for `shell` (bash or zsh) of the commands and options of `app`.
std::string completion_script(const CLI::App& app, const std::string& shell);

}  // namespace unloc_cli
