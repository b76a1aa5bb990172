# backends.cmake: each backend is a CMake option, detected, never assumed.
option(TS_WITH_OPENCL "Build the OpenCL backend (if the ICD loader is found)" ON)

if(TS_WITH_OPENCL)
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    message(STATUS "tessera: OpenCL backend enabled (${OpenCL_LIBRARIES})")
    file(GLOB TS_OPENCL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/backends/opencl/*.c)
    list(APPEND TS_BACKEND_SOURCES ${TS_OPENCL_SOURCES})
    list(APPEND TS_BACKEND_LIBS OpenCL::OpenCL)
    list(APPEND TS_DEFS TS_HAVE_OPENCL CL_TARGET_OPENCL_VERSION=120)
    find_library(TS_CLBLAST clblast)
    if(TS_CLBLAST)
      message(STATUS "tessera: CLBlast found for the benchmarks (${TS_CLBLAST})")
      list(APPEND TS_BENCH_LIBS ${TS_CLBLAST})
      list(APPEND TS_DEFS TS_HAVE_CLBLAST)
    endif()
  else()
    message(STATUS "tessera: OpenCL backend disabled (no OpenCL ICD loader found)")
  endif()
endif()

# Vulkan: the loader, shaderc (GLSL -> SPIR-V at run time) and SPIRV-Tools
# (validation, disassembly). Debian 12's shared libshaderc.so is broken, so
# the static shaderc_combined is linked with glslang, SPIRV and SPIRV-Tools
# (C++ static archives: hence stdc++).
option(TS_WITH_VULKAN "Build the Vulkan backend (if the loader, shaderc and SPIRV-Tools are found)" ON)
if(TS_WITH_VULKAN)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(TS_VK QUIET vulkan)
    pkg_check_modules(TS_SHADERC QUIET shaderc_combined)
    pkg_check_modules(TS_GLSLANG QUIET glslang)
    pkg_check_modules(TS_SPVTOOLS QUIET SPIRV-Tools)
  endif()
  find_library(TS_SPIRV_LIB SPIRV)
  if(TS_VK_FOUND AND TS_SHADERC_FOUND AND TS_GLSLANG_FOUND AND TS_SPVTOOLS_FOUND AND TS_SPIRV_LIB)
    message(STATUS "tessera: Vulkan backend enabled (loader ${TS_VK_VERSION}, shaderc, SPIRV-Tools ${TS_SPVTOOLS_VERSION})")
    file(GLOB TS_VULKAN_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/backends/vulkan/*.c)
    list(APPEND TS_BACKEND_SOURCES ${TS_VULKAN_SOURCES})
    list(APPEND TS_BACKEND_LIBS ${TS_SHADERC_LDFLAGS} ${TS_GLSLANG_LDFLAGS} ${TS_SPIRV_LIB} ${TS_SPVTOOLS_LDFLAGS} ${TS_VK_LDFLAGS} stdc++ m)
    list(APPEND TS_DEFS TS_HAVE_VULKAN)
  else()
    message(STATUS "tessera: Vulkan backend disabled (needs pkg-config modules vulkan, shaderc_combined, glslang, SPIRV-Tools and libSPIRV: "
                   "vulkan=${TS_VK_FOUND} shaderc_combined=${TS_SHADERC_FOUND} glslang=${TS_GLSLANG_FOUND} SPIRV-Tools=${TS_SPVTOOLS_FOUND} SPIRV=${TS_SPIRV_LIB}; "
                   "apt-get install libvulkan-dev mesa-vulkan-drivers libshaderc-dev glslang-dev spirv-tools)")
  endif()
endif()

# CUDA and HIP load their driver and runtime compiler with dlopen at run time
# (no SDK at build time), so they are built by default and report "not
# available: <reason>" where the driver is missing.
option(TS_WITH_CUDA "Build the CUDA backend (driver API and NVRTC loaded at run time)" ON)
option(TS_WITH_HIP "Build the HIP backend (libamdhip64 and hiprtc loaded at run time)" ON)
if(TS_WITH_CUDA)
  message(STATUS "tessera: CUDA backend enabled (libcuda.so.1 and libnvrtc loaded at run time)")
  file(GLOB TS_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/backends/cuda/*.c)
  list(APPEND TS_BACKEND_SOURCES ${TS_CUDA_SOURCES})
  list(APPEND TS_DEFS TS_HAVE_CUDA)
endif()
if(TS_WITH_HIP)
  message(STATUS "tessera: HIP backend enabled (libamdhip64 loaded at run time)")
  file(GLOB TS_HIP_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/backends/hip/*.c)
  list(APPEND TS_BACKEND_SOURCES ${TS_HIP_SOURCES})
  list(APPEND TS_DEFS TS_HAVE_HIP)
endif()
