# The etcd v3 JSON-gateway client (issue 8, multi-host): its own static
# library over libcurl and json-c, not linked into the daemon yet. Without
# libcurl the rest of the tree builds as before and tests/etcd is left out.
pkg_check_modules(CURL IMPORTED_TARGET libcurl>=7.68) # curl_multi_poll, curl_multi_wakeup
if(CURL_FOUND)
  add_library(svcfs-etcd STATIC ${CMAKE_CURRENT_LIST_DIR}/etcd.c)
  target_include_directories(svcfs-etcd PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(svcfs-etcd PUBLIC PkgConfig::CURL PkgConfig::JSONC Threads::Threads)
else()
  message(STATUS "libcurl not found: the etcd client (svcfs-etcd) is not built")
endif()
