#pragma once

/// @file
/// Everything but the API client: models, parsing, credentials and webhook
/// URLs, delivery validation, the event store. Needs no JSON library and
/// never libcurl: a service that only receives webhooks includes this.

#include <unloc/access_event.hpp>
#include <unloc/credentials.hpp>
#include <unloc/delivery.hpp>
#include <unloc/error.hpp>
#include <unloc/event_store.hpp>
#include <unloc/http_headers.hpp>
#include <unloc/parse.hpp>
#include <unloc/timestamp.hpp>
#include <unloc/token.hpp>
#include <unloc/uuid.hpp>
#include <unloc/version.hpp>
#include <unloc/webhook.hpp>
