# bench_smoke: bench/run.sh --smoke on this build's programs, then checks that
# OUTPUT is valid JSON holding every figure with the fields the issue names.
execute_process(COMMAND ${RUN_SH} --smoke --build-dir ${BUILD_DIR} ${OUTPUT}
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "bench/run.sh --smoke failed (exit status ${status})")
endif()
file(READ ${OUTPUT} text)
string(JSON count ERROR_VARIABLE problem LENGTH "${text}" figures)
if(problem)
  message(FATAL_ERROR "${OUTPUT} is not the expected JSON: ${problem}")
endif()
set(expected validate_delivery log_page_time log_page_rss_over_input paged_read_rss_growth
    client_calls receiver_load receiver_vs_httplib receiver_under_attack
    compile_full_O0 compile_full_O2 compile_validation_O0
    compile_validation_O2)
set(names)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  foreach(field name value unit baseline baseline_value ratio target)
    string(JSON ${field} ERROR_VARIABLE problem GET "${text}" figures ${i} ${field})
    if(problem)
      message(FATAL_ERROR "figure ${i} of ${OUTPUT}: ${problem}")
    endif()
  endforeach()
  list(APPEND names ${name})
endforeach()
if(NOT names STREQUAL expected)
  message(FATAL_ERROR "figures ${names}, expected ${expected}")
endif()
message(STATUS "bench/run.sh --smoke wrote ${count} figures to ${OUTPUT}")
