# Optional model and storage backends, found but not linked here: the backend folders link the
# targets below behind their SLUICE_HAVE_* option.
#
#   onnxruntime::onnxruntime  SLUICE_HAVE_ONNXRUNTIME  ${ONNXRUNTIME_ROOT}/{include,lib}
#   duckdb::duckdb            SLUICE_HAVE_DUCKDB       ${DUCKDB_ROOT}/{include,lib}
#   xgboost::xgboost          SLUICE_HAVE_XGBOOST      Debian libxgboost-dev (CMake config)
#
# ONNXRUNTIME_ROOT and DUCKDB_ROOT default to the prefix filled by scripts/bootstrap; point them
# at another install with -DONNXRUNTIME_ROOT=... / -DDUCKDB_ROOT=.... A missing backend is not an
# error: its SLUICE_HAVE_* is OFF and one status line says why.

# sluice_import_shared(NAME TARGET ROOT LIBRARY HAVE_VAR HEADER...): when ROOT/lib/LIBRARY and
# every ROOT/HEADER exist, defines TARGET as an IMPORTED shared library (include dir ROOT/include),
# adds ROOT/lib to the build RPATH and sets HAVE_VAR ON; otherwise sets HAVE_VAR OFF. Prints one
# status line either way.
function(sluice_import_shared name target root library have_var)
  set(missing "")
  foreach(file IN ITEMS "lib/${library}" LISTS ARGN)
    if(NOT EXISTS "${root}/${file}")
      list(APPEND missing "${root}/${file}")
    endif()
  endforeach()
  if(missing)
    list(JOIN missing ", " missing_text)
    string(TOUPPER "${name}" upper_name)
    message(STATUS "sluice: ${name} not found (missing ${missing_text}); "
                   "run scripts/bootstrap or set -D${upper_name}_ROOT")
    set(${have_var} OFF PARENT_SCOPE)
    return()
  endif()
  add_library(${target} SHARED IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES
    IMPORTED_LOCATION "${root}/lib/${library}"
    INTERFACE_INCLUDE_DIRECTORIES "${root}/include")
  # Binaries run from the build tree find the library (by its SONAME) without LD_LIBRARY_PATH.
  set(rpath ${CMAKE_BUILD_RPATH} "${root}/lib")
  list(REMOVE_DUPLICATES rpath)
  set(CMAKE_BUILD_RPATH "${rpath}" PARENT_SCOPE)
  set(${have_var} ON PARENT_SCOPE)
  message(STATUS "sluice: ${name} found in ${root}")
endfunction()

# ONNX Runtime 1.29 (C/C++ API; the library's SONAME is libonnxruntime.so.1).
sluice_import_shared(onnxruntime onnxruntime::onnxruntime "${ONNXRUNTIME_ROOT}" libonnxruntime.so
  SLUICE_HAVE_ONNXRUNTIME include/onnxruntime_c_api.h include/onnxruntime_cxx_api.h)

# DuckDB 1.4 (C API; reads Parquet).
sluice_import_shared(duckdb duckdb::duckdb "${DUCKDB_ROOT}" libduckdb.so
  SLUICE_HAVE_DUCKDB include/duckdb.h)

# XGBoost (C API). Debian's config defines xgboost::xgboost, and also imports the `xgboost` CLI
# (Debian package `xgboost`, installed by scripts/bootstrap); when that executable is missing the
# config stops configuration with a fatal error, so it is only loaded when the CLI is present
# (or xgboost_DIR points at another install). Otherwise the library and header are looked up
# directly and the same target name is defined.
find_program(SLUICE_XGBOOST_CLI xgboost)
if(xgboost_DIR OR SLUICE_XGBOOST_CLI)
  find_package(xgboost CONFIG QUIET)
endif()
if(NOT TARGET xgboost::xgboost)
  find_library(SLUICE_XGBOOST_LIBRARY xgboost)
  find_path(SLUICE_XGBOOST_INCLUDE_DIR xgboost/c_api.h)
  if(SLUICE_XGBOOST_LIBRARY AND SLUICE_XGBOOST_INCLUDE_DIR)
    add_library(xgboost::xgboost SHARED IMPORTED GLOBAL)
    set_target_properties(xgboost::xgboost PROPERTIES
      IMPORTED_LOCATION "${SLUICE_XGBOOST_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${SLUICE_XGBOOST_INCLUDE_DIR}")
  endif()
endif()
if(TARGET xgboost::xgboost)
  set(SLUICE_HAVE_XGBOOST ON)
  if(xgboost_VERSION)
    message(STATUS "sluice: xgboost ${xgboost_VERSION} found")
  else()
    message(STATUS "sluice: xgboost found (${SLUICE_XGBOOST_LIBRARY})")
  endif()
else()
  set(SLUICE_HAVE_XGBOOST OFF)
  message(STATUS "sluice: xgboost not found (install libxgboost-dev: scripts/bootstrap)")
endif()
