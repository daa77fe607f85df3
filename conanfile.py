"""Conan 2 recipe for unloc-cpp, a header-only C++17 SDK.

    conan create . --build=missing

tests/consumers/check_recipes.cmake checks that this recipe, ports/unloc/vcpkg.json
and the CMake project agree on the version and the dependencies;
tests/consumers/check_conan_recipe.py runs this recipe's methods without Conan,
from a copy of what exports_sources lists.
"""
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class UnlocConan(ConanFile):
    name = "unloc"
    description = ("C++ SDK for the Unloc smart-lock platform: Access Events, "
                   "webhook delivery validation, the access log client")
    license = "MIT"
    url = "https://github.com/unloc/unloc-cpp"
    homepage = "https://github.com/unloc/unloc-cpp"
    topics = ("unloc", "smart-lock", "webhooks", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    # with_client: the component client (unloc::unloc, the API client) and libcurl.
    # with_beast: the component beast (unloc::beast, <unloc/beast.hpp>) and Boost.
    # with_sqlite, with_postgresql: the event stores (unloc::sqlite, unloc::postgresql,
    # <unloc/stores/*.hpp>) and SQLite or libpq; PostgreSQL's is POSIX only.
    options = {"with_client": [True, False], "with_beast": [True, False],
               "with_sqlite": [True, False], "with_postgresql": [True, False]}
    default_options = {"with_client": True, "with_beast": False, "with_sqlite": False,
                       "with_postgresql": False, "boost/*:header_only": True}
    # What configuring with the options of generate() reads: no docs/, tests/ or tools/.
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # The version is written once, in include/unloc/version.hpp.
        header = load(self, os.path.join(self.recipe_folder, "include", "unloc", "version.hpp"))
        self.version = re.search(r'#define UNLOC_VERSION_STRING "([0-9]+\.[0-9]+\.[0-9]+)"',
                                 header).group(1)

    def requirements(self):
        # The same minimum versions as find_package() in CMakeLists.txt. No nlohmann_json:
        # no header includes it (link your own for the to_json/from_json round trips).
        if self.options.with_client:
            self.requires("libcurl/[>=7.77 <9]")
        if self.options.with_beast:
            self.requires("boost/[>=1.74 <2]")
        if self.options.with_sqlite:
            self.requires("sqlite3/[>=3.35 <4]")
        if self.options.with_postgresql:
            self.requires("libpq/[>=10]")

    def validate(self):
        # A clear message instead of compile errors on a compiler defaulting to C++14 (MSVC).
        check_min_cppstd(self, 17)
        if self.options.with_postgresql and self.settings.os == "Windows":
            # The store waits on its socket with poll(): POSIX only.
            raise ConanInvalidConfiguration("unloc: with_postgresql is not available on Windows")

    def layout(self):
        cmake_layout(self, src_folder=".")

    def package_id(self):
        # Header-only: one package for every setting, and for every option (they only
        # choose dependencies and components; the headers are the same).
        self.info.clear()

    def generate(self):
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["UNLOC_BUILD_TESTS"] = False
        toolchain.cache_variables["UNLOC_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["UNLOC_BUILD_TOOLS"] = False
        toolchain.cache_variables["UNLOC_BUILD_FUZZERS"] = False
        toolchain.cache_variables["UNLOC_BUILD_DOCS"] = False
        toolchain.cache_variables["UNLOC_INSTALL"] = True
        toolchain.cache_variables["UNLOC_WITH_CLIENT"] = bool(self.options.with_client)
        disabled = {"Boost": not self.options.with_beast,
                    "SQLite3": not self.options.with_sqlite,
                    "PostgreSQL": not self.options.with_postgresql}
        for package, off in disabled.items():
            toolchain.cache_variables["CMAKE_DISABLE_FIND_PACKAGE_" + package] = off
        toolchain.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()

    def package(self):
        copy(self, "LICENSE", src=self.source_folder,
             dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # Conan's CMakeDeps and PkgConfigDeps write these from package_info().
        rmdir(self, os.path.join(self.package_folder, "lib"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        # The components and their targets are those of the CMake package (unlocConfig.cmake)
        # and its .pc files. The aggregate that CMakeDeps makes of them gets a name nobody
        # links, since unloc::unloc is the client's target there.
        self.cpp_info.set_property("cmake_file_name", "unloc")
        self.cpp_info.set_property("cmake_target_name", "unloc_all_do_not_use")
        self.cpp_info.set_property("pkg_config_name", "unloc_all_do_not_use")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []

        # unloc::core: models and webhook delivery validation, no libcurl.
        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "unloc::core")
        core.set_property("pkg_config_name", "unloc-core")
        core.bindirs = []
        core.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]
        elif self.settings.os == "Windows":
            core.system_libs = ["bcrypt"]  # BCryptGenRandom (include/unloc/detail/os.hpp)

        # unloc::unloc: the libcurl-backed API client, on top of core.
        if self.options.with_client:
            client = self._header_only_component("client", "unloc::unloc", "libcurl::libcurl")
            client.set_property("pkg_config_name", "unloc")
        # The Boost.Beast adapter and the event stores, on top of core.
        if self.options.with_beast:
            self._header_only_component("beast", "unloc::beast", "boost::headers")
        if self.options.with_sqlite:
            self._header_only_component("sqlite", "unloc::sqlite", "sqlite3::sqlite3")
        if self.options.with_postgresql:
            self._header_only_component("postgresql", "unloc::postgresql", "libpq::libpq")

    def _header_only_component(self, name, target, dependency):
        """The component `name` (CMake target `target`): headers over core and `dependency`."""
        component = self.cpp_info.components[name]
        component.set_property("cmake_target_name", target)
        component.requires = ["core", dependency]
        component.bindirs = []
        component.libdirs = []
        return component
