# The etcd v3 JSON-gateway client (several hosts, SPEC §8): its own static
# library over libcurl and json-c, linked into the daemon's core.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl>=7.68) # curl_multi_poll, curl_multi_wakeup
add_library(svcfs-etcd STATIC ${CMAKE_CURRENT_LIST_DIR}/etcd.c)
target_include_directories(svcfs-etcd PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(svcfs-etcd PUBLIC PkgConfig::CURL PkgConfig::JSONC Threads::Threads)
