# edgeq_module(): compile one model for one target through edgeq's CLI, the way IREE's iree_bytecode_module()
# compiles one MLIR file, and register a CTest that runs it on the target and checks it bit-exact.
#
#   include(path/to/edgeq/cmake/edgeq.cmake)
#   edgeq_module(NAME r18_arm64_w8a8 MODEL resnet18 TARGET arm64-linux BITS w8a8 [HW npu.toml] [INPUT_SHAPE 1,3,64,64])
#
# The module lands in ${CMAKE_CURRENT_BINARY_DIR}/NAME/ (model.vmfb, manifest.json, the MLIR, model.compile.sh).
# It is rebuilt only when edgeq's sources, a plan file given as BITS, or the HW file change. arm64-android modules
# cannot run here: building them is their check.

find_program(EDGEQ_EXECUTABLE edgeq HINTS "${CMAKE_CURRENT_LIST_DIR}/../.venv/bin" REQUIRED)
file(GLOB_RECURSE EDGEQ_SOURCES CONFIGURE_DEPENDS
     "${CMAKE_CURRENT_LIST_DIR}/../edgeq/*.py" "${CMAKE_CURRENT_LIST_DIR}/../edgeq/*.toml")

function(edgeq_module)
  cmake_parse_arguments(ARG "" "NAME;MODEL;TARGET;BITS;HW;INPUT_SHAPE" "" ${ARGN})
  foreach(required NAME MODEL TARGET BITS)
    if(NOT ARG_${required})
      message(FATAL_ERROR "edgeq_module: ${required} is required")
    endif()
  endforeach()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}")
  set(flags --bits "${ARG_BITS}" --target "${ARG_TARGET}")
  set(depends ${EDGEQ_SOURCES})
  if(EXISTS "${ARG_BITS}")
    list(APPEND depends "${ARG_BITS}")
  endif()
  if(ARG_HW)
    list(APPEND flags --hw "${ARG_HW}")
    list(APPEND depends "${ARG_HW}")
  endif()
  if(ARG_INPUT_SHAPE)
    list(APPEND flags --input-shape "${ARG_INPUT_SHAPE}")
  endif()
  add_custom_command(
    OUTPUT "${out}/model.vmfb" "${out}/manifest.json"
    COMMAND "${EDGEQ_EXECUTABLE}" compile "${ARG_MODEL}" ${flags} -o "${out}"
    DEPENDS ${depends}
    COMMENT "edgeq: ${ARG_MODEL} ${ARG_BITS} for ${ARG_TARGET}"
    VERBATIM)
  add_custom_target(${ARG_NAME} ALL DEPENDS "${out}/model.vmfb")
  if(NOT ARG_TARGET STREQUAL "arm64-android")
    add_test(NAME ${ARG_NAME} COMMAND "${EDGEQ_EXECUTABLE}" run "${out}")
    get_filename_component(bits_tag "${ARG_BITS}" NAME_WE)   # w8a8, or a plan file's name
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_TARGET};${ARG_MODEL};${bits_tag}"
                         PASS_REGULAR_EXPRESSION "bit-exact against the integer reference: yes")
  endif()
endfunction()
