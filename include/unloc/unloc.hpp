#pragma once

/// @file
/// The whole SDK: everything in `<unloc/core.hpp>` and the API client.

#include <unloc/client.hpp>
#include <unloc/core.hpp>
#include <unloc/options.hpp>
#include <unloc/reconciler.hpp>
#include <unloc/transport.hpp>
