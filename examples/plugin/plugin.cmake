# plugin.cmake: builds the example backend plugins in the main tree, into
# ${CMAKE_BINARY_DIR}/plugins (point TESSERA_BACKEND_PATH there):
#   libtessera-backend-hostsim.so  the smallest out-of-tree backend (docs/porting.md)
#   libtessera-backend-faulty.so   fault injection for the conformance tests
# Included from the top-level CMakeLists.txt after the `tessera` target exists.
# examples/plugin/CMakeLists.txt builds the same sources against an installed
# Tessera (find_package(tessera)).
#
# A plugin links the shared libtessera for the few functions it calls
# (ts_backend_run_reference, ts_kernel_*, ts_config_get), never the static
# library: it must not carry a private copy of the registry.
set(TS_PLUGIN_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins)
foreach(ts_plugin hostsim faulty)
  add_library(tessera_backend_${ts_plugin} MODULE ${CMAKE_CURRENT_LIST_DIR}/${ts_plugin}.c)
  set_target_properties(tessera_backend_${ts_plugin} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME tessera-backend-${ts_plugin}
    LIBRARY_OUTPUT_DIRECTORY ${TS_PLUGIN_OUTPUT_DIR}
    C_VISIBILITY_PRESET hidden)
  target_link_libraries(tessera_backend_${ts_plugin} PRIVATE tessera)
  # the CLI and the conformance test load them
  foreach(ts_user tessera_cli test_conformance)
    if(TARGET ${ts_user})
      add_dependencies(${ts_user} tessera_backend_${ts_plugin})
    endif()
  endforeach()
endforeach()
