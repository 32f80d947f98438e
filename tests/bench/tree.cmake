# svcfs-bench-tree: walks of big mounts against tmpfs, churn, daemon memory
# and CPU (SPEC §6). Run as root:
#   build/tests/bench/svcfs-bench-tree [--sizes 1000,10000,100000] [--churn N]
add_executable(svcfs-bench-tree tree.c util.c)
target_link_libraries(svcfs-bench-tree PRIVATE svcfs-core)
target_compile_definitions(svcfs-bench-tree PRIVATE SVCFS_BIN="$<TARGET_FILE:svcfs-daemon>")
add_dependencies(svcfs-bench-tree svcfs-daemon)
