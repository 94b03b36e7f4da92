# Run at build time (cmake -P): writes OUT with the source tree's git commit, or "unknown" where
# the tree is not a git checkout (a release tarball) or git is missing. The file is rewritten only
# when its text changes, so an unchanged commit recompiles nothing.
#   cmake -DSOURCE_DIR=... -DOUT=.../build_info_git.h -P git_commit.cmake
set(commit "unknown")
find_program(GIT_EXECUTABLE git)
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse HEAD WORKING_DIRECTORY "${SOURCE_DIR}"
                  OUTPUT_VARIABLE head RESULT_VARIABLE head_result OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(head_result EQUAL 0 AND head MATCHES "^[0-9a-f]+$")
    set(commit "${head}")
    # Uncommitted changes to tracked files: the commit alone does not describe the build.
    execute_process(COMMAND "${GIT_EXECUTABLE}" diff --quiet HEAD -- WORKING_DIRECTORY "${SOURCE_DIR}"
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(dirty EQUAL 1)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Generated at build time by cmake/git_commit.cmake.\n#pragma once\n#define FFR_BUILD_GIT_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
