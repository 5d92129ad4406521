# FaissCapi.cmake - FAISS's C API (faiss_c) as the static library target `faiss_capi`.
#
# Debian 12 ships libfaiss.a and the C API headers (/usr/include/faiss/c_api) but not
# the C API library itself, so we compile c_api/*.cpp from Debian's own source of the
# installed libfaiss-dev (fetched at configure time by scripts/fetch-faiss-src.sh into
# ${CMAKE_BINARY_DIR}/faiss-src) against the system headers, and link the result with
# the system libfaiss.a, OpenMP and BLAS/LAPACK.  Only tools and tests link it: the
# mount daemon (target faissfs) never does.
#
# Cache variable FAISSFS_FAISS_SRC: an unpacked faiss source to copy instead of running
# `apt-get source faiss` (offline builds).

set(FAISSFS_FAISS_SRC "" CACHE PATH
    "Unpacked faiss source to use instead of 'apt-get source faiss' (empty: fetch)")

set(FAISS_SRC_DIR ${CMAKE_BINARY_DIR}/faiss-src)
set(FAISS_SYS_CAPI /usr/include/faiss/c_api)

# --- the source ---------------------------------------------------------------------
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env FAISSFS_FAISS_SRC=${FAISSFS_FAISS_SRC}
          bash ${CMAKE_CURRENT_LIST_DIR}/../scripts/fetch-faiss-src.sh ${FAISS_SRC_DIR}
  RESULT_VARIABLE fetch_rc
  OUTPUT_VARIABLE fetch_out
  ERROR_VARIABLE fetch_err)
if(NOT fetch_rc EQUAL 0)
  message(FATAL_ERROR
    "Could not get Debian's FAISS source for the C API:\n${fetch_err}\n"
    "Run scripts/install-deps.sh (it enables deb-src and installs dpkg-dev), then "
    "configure again; or set -DFAISSFS_FAISS_SRC=<unpacked faiss source>; or build "
    "without the FAISS tools and tests with -DFAISSFS_WITH_FAISS=OFF.")
endif()
string(STRIP "${fetch_out}" fetch_out)
message(STATUS "${fetch_out}")

set(capi_dir ${FAISS_SRC_DIR}/c_api)
file(GLOB capi_rel_sources RELATIVE ${capi_dir} CONFIGURE_DEPENDS
     ${capi_dir}/*.cpp ${capi_dir}/impl/*.cpp ${capi_dir}/utils/*.cpp)
file(GLOB capi_rel_headers RELATIVE ${capi_dir}
     ${capi_dir}/*.h ${capi_dir}/impl/*.h ${capi_dir}/utils/*.h)
list(LENGTH capi_rel_sources n_capi)
if(n_capi EQUAL 0)
  message(FATAL_ERROR "${capi_dir} has no .cpp files: remove ${FAISS_SRC_DIR} and configure "
                      "again to fetch the source anew")
endif()

# --- system headers or the source's? ------------------------------------------------
# The .cpp files include their headers with "..." (found beside them first), so to
# compile against the system headers we copy only the .cpp files to the build tree.
# That is right only if the system headers are the same as the source's.
set(capi_mismatch "")
foreach(h ${capi_rel_headers})
  if(NOT EXISTS ${FAISS_SYS_CAPI}/${h})
    list(APPEND capi_mismatch "${h} (missing in ${FAISS_SYS_CAPI})")
    continue()
  endif()
  file(SHA256 ${capi_dir}/${h} h_src)
  file(SHA256 ${FAISS_SYS_CAPI}/${h} h_sys)
  if(NOT h_src STREQUAL h_sys)
    list(APPEND capi_mismatch "${h}")
  endif()
endforeach()

set(capi_sources "")
if(capi_mismatch STREQUAL "")
  set(capi_build_dir ${CMAKE_BINARY_DIR}/faiss-capi-src)
  foreach(s ${capi_rel_sources})
    configure_file(${capi_dir}/${s} ${capi_build_dir}/${s} COPYONLY)
    list(APPEND capi_sources ${capi_build_dir}/${s})
  endforeach()
  set(capi_includes ${FAISS_SYS_CAPI} ${FAISS_SYS_CAPI}/impl ${FAISS_SYS_CAPI}/utils)
  message(STATUS "faiss_capi: ${n_capi} sources, compiled against ${FAISS_SYS_CAPI}")
else()
  foreach(s ${capi_rel_sources})
    list(APPEND capi_sources ${capi_dir}/${s})
  endforeach()
  set(capi_includes "")
  message(WARNING
    "The FAISS source's C API headers differ from ${FAISS_SYS_CAPI}: ${capi_mismatch}. "
    "Compiling with the source's headers; if linking fails, libfaiss-dev and the fetched "
    "source are different versions: run scripts/install-deps.sh and remove ${FAISS_SRC_DIR}.")
endif()

# --- the library --------------------------------------------------------------------
find_library(FAISS_STATIC_LIB NAMES libfaiss.a PATHS /usr/lib/x86_64-linux-gnu)
if(NOT FAISS_STATIC_LIB)
  message(FATAL_ERROR "libfaiss.a not found: install libfaiss-dev (scripts/install-deps.sh)")
endif()
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_library(FAISS_BLAS_LIB NAMES blas)
find_library(FAISS_LAPACK_LIB NAMES lapack)
if(NOT FAISS_BLAS_LIB OR NOT FAISS_LAPACK_LIB)
  message(FATAL_ERROR "BLAS/LAPACK not found (libblas-dev, liblapack-dev come with "
                      "libfaiss-dev): run scripts/install-deps.sh")
endif()

add_library(faiss_capi STATIC ${capi_sources})
set_target_properties(faiss_capi PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
                                            POSITION_INDEPENDENT_CODE ON)
# Third-party code: its warnings are not ours to fix (and must not break -Werror).
target_compile_options(faiss_capi PRIVATE -w)
target_include_directories(faiss_capi PRIVATE ${capi_includes})
# Users include <faiss/c_api/...> from /usr/include, which is on the default path.
target_link_libraries(faiss_capi PUBLIC ${FAISS_STATIC_LIB} OpenMP::OpenMP_CXX
                      ${FAISS_LAPACK_LIB} ${FAISS_BLAS_LIB} stdc++ m)
