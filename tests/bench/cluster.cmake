# svcfs-bench-cluster: a service on one host -> the other host's view through
# etcd (SPEC §8), beside etcd's own put -> watch. Needs the etcd client
# (libcurl) and, to run, etcd (Debian: etcd-server). Run as root:
#   build/tests/bench/svcfs-bench-cluster [--rounds N]
if(TARGET svcfs-etcd)
  add_executable(svcfs-bench-cluster cluster.c util.c)
  target_link_libraries(svcfs-bench-cluster PRIVATE svcfs-core svcfs-etcd)
  target_compile_definitions(svcfs-bench-cluster PRIVATE SVCFS_BIN="$<TARGET_FILE:svcfs-daemon>")
  add_dependencies(svcfs-bench-cluster svcfs-daemon)
else()
  message(STATUS "no etcd client (libcurl): svcfs-bench-cluster is not built")
endif()
