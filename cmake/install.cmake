# Install rules for everything but the two binaries (the main CMakeLists
# installs telecared to sbin and telecarectl to bin). Included from the top
# CMakeLists.txt with include(cmake/install.cmake).
#
# With -DCMAKE_INSTALL_PREFIX=/usr (Debian's places):
#   /usr/share/man/man{1,5,8}/         telecarectl.1, telecared.conf.5, telecared.8
#   /usr/lib/systemd/system/           telecared.service (ExecStart= follows the prefix)
#   /usr/lib/sysusers.d/telecare.conf  the telecare user and group
#   /usr/lib/tmpfiles.d/telecare.conf  /var/lib/telecare, /etc/telecare modes
#   /usr/share/doc/telecare/examples/  telecared.conf, mosquitto.conf, mosquitto.acl
#   /usr/share/telecare/               broker-credentials.sh, make-test-ca.sh
#   /etc/telecare/telecared.conf       the example configuration, only when no
#                                      file is there: an administrator's edits
#                                      are never overwritten (like a dpkg conffile
#                                      the admin changed). The directory is the
#                                      one telecared reads by default
#                                      (TELECARE_CONFIG_PATH), whatever the prefix.
# Everything honours DESTDIR. With another prefix (/usr/local by default) the
# systemd files go to PREFIX/lib/..., which systemd also searches for
# /usr/local. Not "${CMAKE_INSTALL_LIBDIR}": on Debian that is
# lib/x86_64-linux-gnu, where systemd looks for nothing.

set(TELECARE_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd system units, relative to the prefix (or absolute)")
set(TELECARE_SYSUSERSDIR "lib/sysusers.d" CACHE STRING
    "sysusers.d files, relative to the prefix (or absolute)")
set(TELECARE_TMPFILESDIR "lib/tmpfiles.d" CACHE STRING
    "tmpfiles.d files, relative to the prefix (or absolute)")
set(TELECARE_EXAMPLESDIR "${CMAKE_INSTALL_DATAROOTDIR}/doc/telecare/examples")
set(TELECARE_SCRIPTSDIR "${CMAKE_INSTALL_DATAROOTDIR}/telecare")

# The console (docs/HTTP.md): static files served by telecared ([http] root).
if(EXISTS ${PROJECT_SOURCE_DIR}/console)
  install(DIRECTORY console/ DESTINATION ${CMAKE_INSTALL_DATADIR}/telecare/console
          PATTERN "dev" EXCLUDE PATTERN "README.md" EXCLUDE)
endif()
install(FILES man/telecarectl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/telecared.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES man/telecared.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

install(FILES systemd/telecare.sysusers DESTINATION ${TELECARE_SYSUSERSDIR}
        RENAME telecare.conf)
install(FILES systemd/telecare.tmpfiles DESTINATION ${TELECARE_TMPFILESDIR}
        RENAME telecare.conf)

install(FILES config/telecared.conf config/mosquitto.conf config/mosquitto.acl
        DESTINATION ${TELECARE_EXAMPLESDIR})
install(PROGRAMS scripts/broker-credentials.sh scripts/make-test-ca.sh
        DESTINATION ${TELECARE_SCRIPTSDIR})

# The unit names the installed telecared: /usr/sbin/telecared in the source,
# PREFIX/SBINDIR/telecared once installed (and the configured
# TELECARE_CONFIG_PATH). Done at install time, so that
# `cmake --install build --prefix X` is honoured too.
set(_tc_unit_src "${CMAKE_CURRENT_SOURCE_DIR}/systemd/telecared.service")
install(CODE "
  set(_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
  if(NOT IS_ABSOLUTE \"\${_sbindir}\")
    set(_sbindir \"\${_prefix}/\${_sbindir}\")
  endif()
  set(_unitdir \"${TELECARE_SYSTEMD_UNITDIR}\")
  if(NOT IS_ABSOLUTE \"\${_unitdir}\")
    set(_unitdir \"\${_prefix}/\${_unitdir}\")
  endif()
  file(READ \"${_tc_unit_src}\" _unit)
  string(REPLACE \"ExecStart=/usr/sbin/telecared -c /etc/telecare/telecared.conf\"
         \"ExecStart=\${_sbindir}/telecared -c ${TELECARE_CONFIG_PATH}\" _unit \"\${_unit}\")
  file(WRITE \"${CMAKE_CURRENT_BINARY_DIR}/telecared.service.install\" \"\${_unit}\")
  file(INSTALL DESTINATION \"\${_unitdir}\" TYPE FILE RENAME telecared.service
       FILES \"${CMAKE_CURRENT_BINARY_DIR}/telecared.service.install\")
")

# The configuration: put the example in place only when there is none.
get_filename_component(_tc_confdir "${TELECARE_CONFIG_PATH}" DIRECTORY)
get_filename_component(_tc_confname "${TELECARE_CONFIG_PATH}" NAME)
install(CODE "
  set(_dest \"\$ENV{DESTDIR}${TELECARE_CONFIG_PATH}\")
  if(EXISTS \"\${_dest}\")
    message(STATUS \"Keeping: \${_dest} (the example is in \${CMAKE_INSTALL_PREFIX}/${TELECARE_EXAMPLESDIR})\")
  else()
    # file(INSTALL) adds DESTDIR itself and records the file in the manifest
    file(INSTALL DESTINATION \"${_tc_confdir}\" TYPE FILE RENAME \"${_tc_confname}\"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES \"${CMAKE_CURRENT_SOURCE_DIR}/config/telecared.conf\")
  endif()
")
