#!/usr/bin/env python3
"""conanfile.py replayed without Conan (ctest label `consumer`; there is no Conan here).

A small stand-in for the part of the Conan 2 API the recipe uses (ConanFile, copy,
load, rmdir, check_min_cppstd, CMakeToolchain, CMake, cmake_layout) loads the
recipe and runs its methods the way `conan create` does, with real files and a
real CMake:
  1. export: only what exports_sources lists is copied into a fresh directory;
  2. validate(): C++17 is required, so a profile at C++14 (MSVC's default) is
     refused with ConanInvalidConfiguration, before anything compiles, and so is
     with_postgresql on Windows;
  3. for each option set: requirements() (libcurl only with with_client, Boost,
     SQLite and libpq only with with_beast, with_sqlite, with_postgresql),
     generate() and build() (CMake configures the exported sources with the
     recipe's cache variables; without the client, libcurl hidden), package()
     (headers and license, no lib/ or share/), and package_info(), whose
     components must name exactly the targets and .pc files that the CMake
     package installed from the same build defines.
What it cannot check: Conan's own CMakeDeps output and ConanCenter's hooks.

    check_conan_recipe.py SOURCE_DIR WORK_DIR [CMAKE [GENERATOR [CXX_COMPILER]]]
"""
import fnmatch
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types


class ConanInvalidConfiguration(Exception):
    pass


class Settings:
    """settings.compiler.cppstd and friends, as plain attributes."""

    def __init__(self, **values):
        for name, value in values.items():
            setattr(self, name, value)

    def get_safe(self, name, default=None):
        node = self
        for part in name.split("."):
            node = getattr(node, part, None)
            if node is None:
                return default
        return node


class Options(dict):
    __getattr__ = dict.__getitem__


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.components = {}
        self.requires = []
        self.system_libs = []
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]

    def set_property(self, name, value):
        self.properties[name] = value


class Components(dict):
    def __missing__(self, name):
        self[name] = CppInfo()
        return self[name]


class ConanFile:
    def __init__(self, recipe_folder, settings, options, work):
        self.recipe_folder = recipe_folder
        self.source_folder = recipe_folder
        self.build_folder = os.path.join(work, "build")
        self.package_folder = os.path.join(work, "package")
        self.generators_folder = self.build_folder
        self.settings = settings
        merged = {k: v for k, v in type(self).default_options.items() if "/" not in k}
        merged.update(options)
        for name, value in merged.items():
            if value not in type(self).options[name]:
                raise ValueError(f"option {name}={value} is not one of {type(self).options[name]}")
        self.options = Options(merged)
        self.requirements_seen = []
        self.cache_variables = {}
        self.cpp_info = CppInfo()
        self.cpp_info.components = Components()
        self.info = types.SimpleNamespace(clear=lambda: None)

    def requires(self, reference):
        self.requirements_seen.append(reference)


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def copy(conanfile, pattern, src, dst):
    for root, _, files in os.walk(src):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), src)
            if fnmatch.fnmatch(rel, pattern):  # fnmatch's * matches '/', as Conan's copy
                os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
                shutil.copy2(os.path.join(root, name), os.path.join(dst, rel))


def rmdir(conanfile, path):
    shutil.rmtree(path, ignore_errors=True)


# The C++ standard each compiler uses when the profile sets none (the MSVC case of the issue).
DEFAULT_CPPSTD = {"msvc": "14", "gcc": "17", "clang": "17", "apple-clang": "98"}


def check_min_cppstd(conanfile, cppstd):
    compiler = conanfile.settings.compiler
    current = compiler.cppstd or DEFAULT_CPPSTD[compiler.name]
    def year(std):  # "gnu17" -> 2017, "98" -> 1998
        two_digits = int(str(std).replace("gnu", ""))
        return two_digits + (1900 if two_digits == 98 else 2000)

    if year(current) < year(cppstd):
        raise ConanInvalidConfiguration(
            f"Current cppstd ({current}) is lower than the required C++ standard ({cppstd}).")


class CMakeToolchain:
    def __init__(self, conanfile):
        self._conanfile = conanfile
        self.cache_variables = {}

    def generate(self):
        self._conanfile.cache_variables = dict(self.cache_variables)


class CMakeDeps:
    def __init__(self, conanfile):
        pass

    def generate(self):
        pass  # the dependencies come from the system here


CMAKE = "cmake"
GENERATOR = None
EXTRA_CACHE = []
EXTRA_CACHE_ALWAYS = []


def run(*command):
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, check=True)


class CMake:
    def __init__(self, conanfile):
        self._conanfile = conanfile

    def configure(self):
        c = self._conanfile
        args = [CMAKE, "-S", c.source_folder, "-B", c.build_folder, "-DCMAKE_BUILD_TYPE=Release"]
        if GENERATOR:
            args += ["-G", GENERATOR]
        for name, value in c.cache_variables.items():
            if isinstance(value, bool):
                value = "ON" if value else "OFF"
            args.append(f"-D{name}={value}")
        run(*args, *EXTRA_CACHE_ALWAYS, *EXTRA_CACHE)

    def install(self):
        c = self._conanfile
        run(CMAKE, "--install", c.build_folder, "--prefix", c.package_folder)


def install_stand_in():
    """Registers the stand-in as the modules the recipe imports."""
    modules = {
        "conan": {"ConanFile": ConanFile},
        "conan.errors": {"ConanInvalidConfiguration": ConanInvalidConfiguration},
        "conan.tools": {},
        "conan.tools.build": {"check_min_cppstd": check_min_cppstd},
        "conan.tools.cmake": {"CMake": CMake, "CMakeDeps": CMakeDeps,
                              "CMakeToolchain": CMakeToolchain,
                              "cmake_layout": lambda conanfile, src_folder=".": None},
        "conan.tools.files": {"copy": copy, "load": load, "rmdir": rmdir},
    }
    for name, members in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        sys.modules[name] = module


def load_recipe(path):
    spec = importlib.util.spec_from_file_location("unloc_conanfile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, ConanFile) and v is not ConanFile]
    if len(recipes) != 1:
        raise SystemExit(f"{path}: expected one ConanFile class, found {len(recipes)}")
    return recipes[0]


def fail(message):
    print("FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def export(source, recipe, destination):
    shutil.rmtree(destination, ignore_errors=True)
    os.makedirs(destination)
    shutil.copy2(os.path.join(source, "conanfile.py"), destination)
    patterns = recipe.exports_sources
    if isinstance(patterns, str):
        patterns = (patterns,)
    for pattern in patterns:
        copy(None, pattern, source, destination)
    print("exported: " + ", ".join(sorted(os.listdir(destination))))


def cmake_package_targets(prefix):
    """The imported targets and .pc names of the CMake package installed in `prefix`."""
    targets = set()
    for path in glob.glob(os.path.join(prefix, "**", "unloc*Targets.cmake"), recursive=True):
        targets |= set(re.findall(r"add_library\((unloc::\w+) INTERFACE IMPORTED\)",
                                  load(None, path)))
    pcs = {os.path.basename(p)[:-3]
           for p in glob.glob(os.path.join(prefix, "**", "*.pc"), recursive=True)}
    return targets, pcs


def replay(recipe_class, exported, work, options, hide_curl):
    global EXTRA_CACHE
    EXTRA_CACHE = ["-DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON"] if hide_curl else []
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(os="Linux", arch="x86_64", build_type="Release",
                        compiler=Settings(name="gcc", version="12", cppstd="17"))
    conanfile = recipe_class(exported, settings, options, work)
    conanfile.set_version()
    conanfile.requirements()
    conanfile.validate()
    conanfile.layout()
    conanfile.generate()
    conanfile.build()

    # The CMake package the same build installs, before package() drops it for Conan's.
    cmake_prefix = os.path.join(work, "cmake-package")
    run(CMAKE, "--install", conanfile.build_folder, "--prefix", cmake_prefix)
    cmake_targets, cmake_pcs = cmake_package_targets(cmake_prefix)

    conanfile.package()
    package = conanfile.package_folder
    for wanted in ("include/unloc/unloc.hpp", "include/unloc/core.hpp", "licenses/LICENSE"):
        if not os.path.isfile(os.path.join(package, wanted)):
            fail(f"{options}: package() did not install {wanted}")
    for unwanted in ("lib", "share", "bin"):
        if os.path.exists(os.path.join(package, unwanted)):
            fail(f"{options}: package() left {unwanted}/ (Conan writes the CMake files itself)")

    conanfile.package_info()
    components = conanfile.cpp_info.components
    conan_targets = {c.properties.get("cmake_target_name") for c in components.values()}
    conan_pcs = {c.properties.get("pkg_config_name") for c in components.values()} - {None}
    if conan_targets != cmake_targets:
        fail(f"{options}: the recipe's components name {sorted(conan_targets)}, the CMake "
             f"package defines {sorted(cmake_targets)}")
    if conan_pcs != cmake_pcs:
        fail(f"{options}: the recipe's pkg-config names {sorted(conan_pcs)}, the CMake "
             f"package installs {sorted(cmake_pcs)}")
    root = conanfile.cpp_info.properties.get("cmake_target_name")
    if root in cmake_targets:
        fail(f"{options}: the aggregate target {root} is also a component's target")
    curl = [r for r in conanfile.requirements_seen if r.startswith("libcurl/")]
    linked = any("libcurl::libcurl" in c.requires for c in components.values())
    with_client = bool(conanfile.options.with_client)
    if bool(curl) != with_client or linked != with_client:
        fail(f"{options}: libcurl required {curl}, linked {linked}")
    for prefix, option in (("boost/", "with_beast"), ("sqlite3/", "with_sqlite"),
                           ("libpq/", "with_postgresql")):
        required = any(r.startswith(prefix) for r in conanfile.requirements_seen)
        if required != bool(conanfile.options[option]):
            fail(f"{options}: {prefix[:-1]} required: {required}")
    if any(r.startswith("nlohmann_json/") for r in conanfile.requirements_seen):
        fail(f"{options}: nlohmann_json is required, though no header includes it")
    print(f"{options}: version {conanfile.version}, requires {conanfile.requirements_seen}, "
          f"components {sorted(conan_targets)} as the CMake package")


def main():
    global CMAKE, GENERATOR
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    source, work = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        CMAKE = sys.argv[3]
    if len(sys.argv) > 4 and sys.argv[4]:
        GENERATOR = sys.argv[4]
    if len(sys.argv) > 5 and sys.argv[5]:
        EXTRA_CACHE_ALWAYS.append(f"-DCMAKE_CXX_COMPILER={sys.argv[5]}")
    install_stand_in()

    exported = os.path.join(work, "export")
    export(source, load_recipe(os.path.join(source, "conanfile.py")), exported)
    recipe_class = load_recipe(os.path.join(exported, "conanfile.py"))

    def check_validate(case, settings, options, refused):
        conanfile = recipe_class(exported, settings, options, os.path.join(work, "validate"))
        try:
            conanfile.validate()
            if refused:
                fail(f"validate() accepts {case}")
        except ConanInvalidConfiguration as error:
            if not refused:
                fail(f"validate() refuses {case}: {error}")
            print(f"validate() refuses {case}: {error}")

    # validate(): C++17 at least, said before any compiler runs.
    for compiler, cppstd, refused in (("msvc", None, True), ("gcc", "14", True),
                                      ("gcc", "gnu17", False), ("msvc", "20", False)):
        settings = Settings(os="Windows", arch="x86_64", build_type="Release",
                            compiler=Settings(name=compiler, version="193", cppstd=cppstd))
        check_validate(f"{compiler} with cppstd {cppstd or 'unset'}", settings, {}, refused)
    # The PostgreSQL store is POSIX only.
    for system, refused in (("Windows", True), ("Linux", False), ("Macos", False)):
        settings = Settings(os=system, arch="x86_64", build_type="Release",
                            compiler=Settings(name="gcc", version="12", cppstd="17"))
        check_validate(f"with_postgresql on {system}", settings, {"with_postgresql": True},
                       refused)

    replay(recipe_class, exported, os.path.join(work, "default"), {}, hide_curl=False)
    replay(recipe_class, exported, os.path.join(work, "no-client"), {"with_client": False},
           hide_curl=True)
    replay(recipe_class, exported, os.path.join(work, "beast"), {"with_beast": True},
           hide_curl=False)
    replay(recipe_class, exported, os.path.join(work, "stores"),
           {"with_sqlite": True, "with_postgresql": True}, hide_curl=False)
    print("conanfile.py: exported sources configure and package; components as the CMake package")


if __name__ == "__main__":
    main()
