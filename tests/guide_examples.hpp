#pragma once

// The examples of Unloc's webhooks guide, verbatim, for the
// tests that must accept exactly what the platform documents.

#include <string>

namespace unloc_test {

/// The guide's Access Event object.
inline const std::string guide_event = R"({
  "id": "ae832e61-c8fa-4ed9-8196-61210cb4207b",
  "action": "unlocked",
  "created": "2022-01-01T10:35:24.083Z",
  "keyId": "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",
  "lockId": "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef",
  "lockName": "North gate",
  "appUserId": "+12125552390",
  "userName": ""
})";

/// The body of the guide's example delivery (its id has no RFC 4122 version).
inline const std::string guide_delivery = R"({
  "id": "def32263-a884-aed0-f167-f1a1ccbd297a",
  "action": "locked",
  "created": "2022-01-01T10:40:00.013Z",
  "keyId": "3f97fafb-1b6a-42d0-85fa-ae2ef338cc45",
  "lockId": "c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef",
  "lockName": "North gate",
  "appUserId": "+12125552390",
  "userName": ""
})";

/// The guide's example delivery carries `Authorization: Basic bXl1c2VyOm15cGFzc3dvb3Jk`.
inline const std::string guide_authorization = "Basic bXl1c2VyOm15cGFzc3dvb3Jk";

}  // namespace unloc_test
