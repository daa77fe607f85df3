// One of two translation units that include the whole SDK and are linked into
// one program: a non-inline function or variable defined in a header is then
// defined twice and the link fails (fmt's check).
#include <unloc/unloc.hpp>

#include <string>

std::string unloc_two_units_a() { return unloc::version_string; }
