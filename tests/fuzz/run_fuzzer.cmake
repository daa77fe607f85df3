# Runs a libFuzzer binary for a bounded time from a fresh copy of its seed corpus.
#   cmake -DFUZZER=path -DSEEDS=dir -DWORK_DIR=dir [-DSECONDS=n] -P run_fuzzer.cmake
# The environment variable UNLOC_FUZZ_SECONDS, when set, overrides SECONDS.
# New inputs go to WORK_DIR/corpus, never into the seeds; a crashing input is
# written to WORK_DIR as crash-*, leak-* or timeout-*.

foreach(var FUZZER SEEDS WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(DEFINED ENV{UNLOC_FUZZ_SECONDS} AND NOT "$ENV{UNLOC_FUZZ_SECONDS}" STREQUAL "")
  set(SECONDS "$ENV{UNLOC_FUZZ_SECONDS}")
endif()
if(NOT DEFINED SECONDS)
  set(SECONDS 10)
endif()
if(NOT SECONDS MATCHES "^[0-9]+$" OR SECONDS EQUAL 0)
  message(FATAL_ERROR "run_fuzzer.cmake: the fuzzing time must be a positive number of seconds, got '${SECONDS}'")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
file(GLOB seeds "${SEEDS}/*")
if(seeds)
  file(COPY ${seeds} DESTINATION "${WORK_DIR}/corpus")
endif()

message(STATUS "fuzzing ${FUZZER} for ${SECONDS} s from ${SEEDS}")
execute_process(
  COMMAND "${FUZZER}" "-max_total_time=${SECONDS}" -timeout=10 -rss_limit_mb=2048
          -max_len=16384 -print_final_stats=1 "-artifact_prefix=${WORK_DIR}/"
          "${WORK_DIR}/corpus"
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  file(GLOB artifacts "${WORK_DIR}/crash-*" "${WORK_DIR}/leak-*" "${WORK_DIR}/timeout-*"
       "${WORK_DIR}/oom-*" "${WORK_DIR}/slow-unit-*")
  message(FATAL_ERROR "${FUZZER} failed (${status}); reproduce with: ${FUZZER} ${artifacts}")
endif()
