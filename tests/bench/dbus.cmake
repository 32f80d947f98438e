# The D-Bus baseline of svcfs-bench-latency (SPEC §6): a private dbus-daemon
# and a libdbus-1 client (dbus.c). Without libdbus-1 the bench still builds
# and says "D-Bus: not built"; scripts/deps.sh installs libdbus-1-dev.
pkg_check_modules(DBUS1 IMPORTED_TARGET dbus-1)
if(DBUS1_FOUND)
  target_sources(svcfs-bench-latency PRIVATE ${CMAKE_CURRENT_LIST_DIR}/dbus.c)
  target_link_libraries(svcfs-bench-latency PRIVATE PkgConfig::DBUS1)
  target_compile_definitions(svcfs-bench-latency PRIVATE SVCFS_BENCH_DBUS=1)
else()
  message(STATUS "dbus-1 not found: svcfs-bench-latency is built without its D-Bus baseline")
endif()
