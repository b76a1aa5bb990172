/* vulkan_backend.c: the Vulkan compute backend on the loader (every physical
 * device with a compute queue; lavapipe, Mesa's CPU driver, in CI).
 *
 * Sections: instance and device discovery; device open, features and caps;
 * the on-disk pipeline cache; buffers (host-visible memory, or device-local
 * memory with a staging buffer where the device distinguishes them);
 * compilation (codegen GLSL -> shaderc -> spvValidate -> compute pipeline);
 * launch (arguments block, descriptor set, timestamps).
 *
 * Kernel interface (codegen/dialect.c, buffer_blocks): binding 0 is a
 * read-only storage buffer of 32-bit arguments in ts__cg_args order (less
 * the buffers), binding 1 + t is the t-th tensor parameter. Indices are
 * 32-bit in the shader, so a buffer is limited to the smaller of
 * maxStorageBufferRange and 2^31 - 1 bytes (caps.max_buffer_bytes); larger
 * tensors are refused with TS_ERR_LIMIT, never truncated.
 *
 * Pipeline cache: $TESSERA_CACHE_DIR/bin/vulkan-pipelines-<key>.bin, key =
 * hash of the device's pipelineCacheUUID, vendor/device ids, driver version
 * and the Tessera version, in the binary-cache file format of gpu_common.c
 * (magic, key, size, checksum); the payload's own Vulkan header is checked
 * too. Anything that fails a check is ignored (an empty cache). */
#include "backend_internal.h"
#include "dialect.h"
#include "gpu_common.h"
#include "vk_spirv.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#define TS__VK_MAX_DEVICES 16
#define TS__VK_MAX_ARGS 128
#define TS__VK_MAX_TENSORS 30

typedef struct vk_state {
    VkInstance instance;
    VkPhysicalDevice devices[TS__VK_MAX_DEVICES];
    uint32_t queue_family[TS__VK_MAX_DEVICES];
    int ndevices;
} vk_state;

typedef struct vk_dev {
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t qfamily;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool queries; /* 2 timestamps, or VK_NULL_HANDLE */
    double ts_period_ns;
    uint64_t ts_mask;
    VkPipelineCache pcache;
    uint64_t pcache_key;
    char pcache_path[4200];
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem;
    int host_type;      /* memory type for mapped buffers: host-visible + coherent (+ device-local if any) */
    int device_type;    /* device-local type when it is not host visible, else -1 */
    int atomic_f32;
    pthread_mutex_t lock;
} vk_dev;

typedef struct vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;          /* host-visible memory, or NULL (device-local: staged) */
    VkDeviceSize size;
} vk_buf;

typedef struct vk_module {
    VkShaderModule shader;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    VkDescriptorPool dpool;
    VkDescriptorSet set;
    vk_buf args;        /* the argument block (binding 0) */
    ts__cg_arg cgargs[TS__VK_MAX_ARGS];
    int ncgargs, ntensors, threads;
} vk_module;

static ts_status vk_fail(VkResult r, const char *what) {
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        return ts__error(TS_ERR_OUT_OF_MEMORY, "vulkan: %s: out of memory (VkResult %d)", what, (int)r);
    return ts__error(TS_ERR_DEVICE, "vulkan: %s failed (VkResult %d)", what, (int)r);
}

/* ---------------------------------------------------------------- discovery */

static ts_status vk_init(void **state) {
    *state = NULL;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "tessera", .pEngineName = "tessera",
                             .apiVersion = VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkInstance inst;
    VkResult r = vkCreateInstance(&ci, NULL, &inst);
    if (r != VK_SUCCESS)
        return ts__error(TS_ERR_UNAVAILABLE, "no Vulkan driver (vkCreateInstance: VkResult %d); install mesa-vulkan-drivers (lavapipe) or a GPU driver",
                         (int)r);
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice phys[TS__VK_MAX_DEVICES];
    if (n > TS__VK_MAX_DEVICES) n = TS__VK_MAX_DEVICES;
    if (n) vkEnumeratePhysicalDevices(inst, &n, phys);
    vk_state *st = ts__calloc(1, sizeof *st);
    if (!st) { vkDestroyInstance(inst, NULL); return TS_ERR_OUT_OF_MEMORY; }
    st->instance = inst;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(phys[i], &p);
        if (p.apiVersion < VK_API_VERSION_1_2) continue; /* 8/16-bit storage and the feature structs are core in 1.2 */
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(phys[i], &nq, NULL);
        VkQueueFamilyProperties q[32];
        if (nq > 32) nq = 32;
        vkGetPhysicalDeviceQueueFamilyProperties(phys[i], &nq, q);
        for (uint32_t f = 0; f < nq; f++)
            if (q[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
                st->devices[st->ndevices] = phys[i];
                st->queue_family[st->ndevices++] = f;
                break;
            }
    }
    if (st->ndevices == 0) {
        vkDestroyInstance(inst, NULL);
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "Vulkan instance created but no Vulkan 1.2 device with a compute queue (%u physical devices)", n);
    }
    *state = st;
    return TS_OK;
}

static void vk_shutdown(void *state) {
    vk_state *st = state;
    if (!st) return;
    vkDestroyInstance(st->instance, NULL);
    free(st);
}

static int vk_device_count(void *state) { return state ? ((vk_state *)state)->ndevices : 0; }

/* ---------------------------------------------------------------- pipeline cache on disk */

#define TS__VK_PCACHE_MAGIC "TSVKPC01"

static void pcache_load(vk_dev *d) {
    uint64_t key = ts__hash_bytes(TS__HASH_INIT, d->props.pipelineCacheUUID, VK_UUID_SIZE);
    key = ts__hash_bytes(key, &d->props.vendorID, sizeof d->props.vendorID);
    key = ts__hash_bytes(key, &d->props.deviceID, sizeof d->props.deviceID);
    key = ts__hash_bytes(key, &d->props.driverVersion, sizeof d->props.driverVersion);
    key = ts__hash_str(key, TS_VERSION_STRING);
    d->pcache_key = key;
    ts__bincache_path("vulkan-pipelines", "bin", key, d->pcache_path, sizeof d->pcache_path);
    char *data = NULL;
    size_t n = 0;
    int ok = d->pcache_path[0] && ts__bincache_load(d->pcache_path, TS__VK_PCACHE_MAGIC, key, &data, &n);
    /* VkPipelineCacheHeaderVersionOne: length, version, vendor, device, uuid */
    if (ok) {
        uint32_t hl, ver, ven, dev;
        ok = n >= 16 + VK_UUID_SIZE;
        if (ok) {
            memcpy(&hl, data, 4);
            memcpy(&ver, data + 4, 4);
            memcpy(&ven, data + 8, 4);
            memcpy(&dev, data + 12, 4);
            ok = hl >= 16 + VK_UUID_SIZE && hl <= n && ver == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && ven == d->props.vendorID &&
                 dev == d->props.deviceID && memcmp(data + 16, d->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
        }
    }
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = ok ? n : 0, .pInitialData = ok ? data : NULL};
    if (vkCreatePipelineCache(d->device, &ci, NULL, &d->pcache) != VK_SUCCESS) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        if (vkCreatePipelineCache(d->device, &ci, NULL, &d->pcache) != VK_SUCCESS) d->pcache = VK_NULL_HANDLE;
    }
    free(data);
    ts_clear_error();
}

static void pcache_save(vk_dev *d) {
    if (!d->pcache || !d->pcache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(d->device, d->pcache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *buf = malloc(n);
    if (!buf) return;
    if (vkGetPipelineCacheData(d->device, d->pcache, &n, buf) == VK_SUCCESS) ts__bincache_save(d->pcache_path, TS__VK_PCACHE_MAGIC, d->pcache_key, buf, n);
    free(buf);
    ts_clear_error();
}

/* ---------------------------------------------------------------- device */

static int find_memory(const VkPhysicalDeviceMemoryProperties *m, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer) {
    int best = -1;
    for (uint32_t i = 0; i < m->memoryTypeCount; i++) {
        if (!(bits & (1u << i)) || (m->memoryTypes[i].propertyFlags & want) != want) continue;
        if ((m->memoryTypes[i].propertyFlags & prefer) == prefer) return (int)i;
        if (best < 0) best = (int)i;
    }
    return best;
}

static void vk_device_close(void *dev);

static ts_status vk_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out) {
    vk_state *st = state;
    *out = NULL;
    vk_dev *d = ts__calloc(1, sizeof *d);
    if (!d) return TS_ERR_OUT_OF_MEMORY;
    pthread_mutex_init(&d->lock, NULL);
    d->phys = st->devices[index];
    d->qfamily = st->queue_family[index];
    vkGetPhysicalDeviceProperties(d->phys, &d->props);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->mem);

    /* features the generated shaders use */
    VkPhysicalDeviceShaderAtomicFloatFeaturesEXT af = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    uint32_t next = 0;
    vkEnumerateDeviceExtensionProperties(d->phys, NULL, &next, NULL);
    VkExtensionProperties *exts = calloc(next ? next : 1, sizeof *exts);
    if (!exts) { free(d); return TS_ERR_OUT_OF_MEMORY; }
    vkEnumerateDeviceExtensionProperties(d->phys, NULL, &next, exts);
    int has_af = 0;
    for (uint32_t i = 0; i < next; i++) has_af |= strcmp(exts[i].extensionName, VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME) == 0;
    free(exts);
    if (has_af) f12.pNext = &af;
    vkGetPhysicalDeviceFeatures2(d->phys, &f2);
    if (!f11.storageBuffer16BitAccess || !f12.storageBuffer8BitAccess || !f12.shaderInt8 || !f2.features.shaderInt16) {
        ts_status s = ts__error(TS_ERR_UNAVAILABLE,
                                "vulkan: device '%s' lacks a feature the generated shaders need (storageBuffer16BitAccess %u, storageBuffer8BitAccess %u, "
                                "shaderInt8 %u, shaderInt16 %u)",
                                d->props.deviceName, f11.storageBuffer16BitAccess, f12.storageBuffer8BitAccess, f12.shaderInt8, f2.features.shaderInt16);
        free(d);
        return s;
    }
    d->atomic_f32 = has_af && af.shaderBufferFloat32AtomicAdd;
    /* enable exactly what is used */
    VkPhysicalDeviceShaderAtomicFloatFeaturesEXT eaf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT,
                                                        .shaderBufferFloat32Atomics = VK_TRUE, .shaderBufferFloat32AtomicAdd = VK_TRUE};
    VkPhysicalDeviceVulkan12Features e12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                            .pNext = d->atomic_f32 ? &eaf : NULL,
                                            .storageBuffer8BitAccess = VK_TRUE,
                                            .shaderInt8 = VK_TRUE};
    VkPhysicalDeviceVulkan11Features e11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &e12,
                                            .storageBuffer16BitAccess = VK_TRUE};
    VkPhysicalDeviceFeatures2 e2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11};
    e2.features.shaderInt16 = VK_TRUE;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = d->qfamily, .queueCount = 1,
                                   .pQueuePriorities = &prio};
    const char *dext[] = {VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &e2, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = d->atomic_f32 ? 1u : 0u, .ppEnabledExtensionNames = dext};
    VkResult r = vkCreateDevice(d->phys, &dci, NULL, &d->device);
    if (r != VK_SUCCESS) { free(d); return vk_fail(r, "vkCreateDevice"); }
    vkGetDeviceQueue(d->device, d->qfamily, 0, &d->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = d->qfamily};
    ts_status s = TS_OK;
    if ((r = vkCreateCommandPool(d->device, &pci, NULL, &d->pool)) != VK_SUCCESS) s = vk_fail(r, "vkCreateCommandPool");
    if (!s) {
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = d->pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
        if ((r = vkAllocateCommandBuffers(d->device, &ai, &d->cmd)) != VK_SUCCESS) s = vk_fail(r, "vkAllocateCommandBuffers");
    }
    if (!s) {
        VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        if ((r = vkCreateFence(d->device, &fci, NULL, &d->fence)) != VK_SUCCESS) s = vk_fail(r, "vkCreateFence");
    }
    if (s) { vk_device_close(d); return s; }
    /* timestamps, where the queue has them */
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, NULL);
    VkQueueFamilyProperties q[32];
    if (nq > 32) nq = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(d->phys, &nq, q);
    uint32_t bits = d->qfamily < nq ? q[d->qfamily].timestampValidBits : 0;
    if (bits && d->props.limits.timestampPeriod > 0) {
        VkQueryPoolCreateInfo qpi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
        if (vkCreateQueryPool(d->device, &qpi, NULL, &d->queries) != VK_SUCCESS) d->queries = VK_NULL_HANDLE;
        d->ts_period_ns = d->props.limits.timestampPeriod;
        d->ts_mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    }
    /* memory: one host-visible coherent type for mapped buffers; a separate
     * device-local type when the device has one that is not host visible */
    d->host_type = find_memory(&d->mem, ~0u, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    d->device_type = -1;
    if (d->host_type >= 0 && !(d->mem.memoryTypes[d->host_type].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT))
        d->device_type = find_memory(&d->mem, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (d->host_type < 0) { vk_device_close(d); return ts__error(TS_ERR_UNAVAILABLE, "vulkan: no host-visible coherent memory type"); }
    pcache_load(d);

    /* caps */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, .pNext = &m3};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &drv};
    vkGetPhysicalDeviceProperties2(d->phys, &p2);
    const VkPhysicalDeviceLimits *lim = &d->props.limits;
    memset(caps, 0, sizeof *caps);
    uint32_t wg = lim->maxComputeWorkGroupInvocations;
    if (lim->maxComputeWorkGroupSize[0] < wg) wg = lim->maxComputeWorkGroupSize[0];
    caps->max_group_size = (int)(wg > 1024 ? 1024 : wg);
    caps->shared_mem_bytes = lim->maxComputeSharedMemorySize;
    /* subgroupAdd/Max/Min in row reductions (the kernel checks gl_SubgroupSize at run time) */
    const VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT | VK_SUBGROUP_FEATURE_VOTE_BIT;
    caps->subgroup_size = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & need) == need && sg.subgroupSize >= 2
                              ? (int)sg.subgroupSize : 0;
    caps->compute_units = 1;
    int64_t heap = 0;
    for (uint32_t i = 0; i < d->mem.memoryHeapCount; i++)
        if ((d->mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && (int64_t)d->mem.memoryHeaps[i].size > heap)
            heap = (int64_t)d->mem.memoryHeaps[i].size;
    caps->global_mem_bytes = heap;
    int64_t maxbuf = lim->maxStorageBufferRange;
    if (m3.maxMemoryAllocationSize && (int64_t)m3.maxMemoryAllocationSize < maxbuf) maxbuf = (int64_t)m3.maxMemoryAllocationSize;
    if (maxbuf > 0x7fffffff) maxbuf = 0x7fffffff; /* 32-bit indices in the shaders */
    caps->max_buffer_bytes = maxbuf;
    /* no f64 / i64 in the GLSL dialect (32-bit index type) */
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_F16) | (1u << TS_BF16) | (1u << TS_I32) | (1u << TS_U8) | (1u << TS_BOOL) | (1u << TS_I8) | (1u << TS_I16) | (1u << TS_F8_E4M3) | (1u << TS_F8_E5M2);
    caps->native_dtype_mask = (1u << TS_F32) | (1u << TS_I32) | (1u << TS_U8) | (1u << TS_BOOL) | (1u << TS_I8) | (1u << TS_I16);
    caps->has_atomics_f32 = d->atomic_f32;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "%s", drv.driverName[0] ? drv.driverName : "vulkan");
    snprintf(fp->device, sizeof fp->device, "%s", d->props.deviceName);
    const char *type = d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? "cpu" : d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? "dgpu"
                       : d->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU                                  ? "igpu"
                                                                                                                        : "other";
    snprintf(fp->arch, sizeof fp->arch, "vk-%s-%04x:%04x-sg%u", type, d->props.vendorID, d->props.deviceID, sg.subgroupSize);
    snprintf(fp->driver, sizeof fp->driver, "%.40s %u", drv.driverInfo, d->props.driverVersion);
    snprintf(fp->device_version, sizeof fp->device_version, "Vulkan %u.%u.%u", VK_API_VERSION_MAJOR(d->props.apiVersion),
             VK_API_VERSION_MINOR(d->props.apiVersion), VK_API_VERSION_PATCH(d->props.apiVersion));
    *out = d;
    return TS_OK;
}

static void vk_device_close(void *dev) {
    vk_dev *d = dev;
    if (!d) return;
    if (d->device) {
        vkDeviceWaitIdle(d->device);
        if (d->pcache) {
            pcache_save(d);
            vkDestroyPipelineCache(d->device, d->pcache, NULL);
        }
        if (d->queries) vkDestroyQueryPool(d->device, d->queries, NULL);
        if (d->fence) vkDestroyFence(d->device, d->fence, NULL);
        if (d->pool) vkDestroyCommandPool(d->device, d->pool, NULL);
        vkDestroyDevice(d->device, NULL);
    }
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* ---------------------------------------------------------------- buffers */

static ts_status make_buffer(vk_dev *d, VkDeviceSize bytes, int type, vk_buf *b) {
    memset(b, 0, sizeof *b);
    if (bytes == 0) bytes = 4;
    b->size = bytes;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = bytes,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(d->device, &bci, NULL, &b->buf);
    if (r != VK_SUCCESS) return vk_fail(r, "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(d->device, b->buf, &req);
    if (!(req.memoryTypeBits & (1u << type))) {
        vkDestroyBuffer(d->device, b->buf, NULL);
        return ts__error(TS_ERR_DEVICE, "vulkan: no usable memory type for a storage buffer");
    }
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = (uint32_t)type};
    r = vkAllocateMemory(d->device, &mai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(d->device, b->buf, NULL);
        return vk_fail(r, "vkAllocateMemory");
    }
    vkBindBufferMemory(d->device, b->buf, b->mem, 0);
    if (d->mem.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        r = vkMapMemory(d->device, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
        if (r != VK_SUCCESS) {
            vkFreeMemory(d->device, b->mem, NULL);
            vkDestroyBuffer(d->device, b->buf, NULL);
            return vk_fail(r, "vkMapMemory");
        }
    }
    return TS_OK;
}

static void drop_buffer(vk_dev *d, vk_buf *b) {
    if (b->buf) vkDestroyBuffer(d->device, b->buf, NULL);
    if (b->mem) vkFreeMemory(d->device, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static ts_status vk_alloc(void *dev, size_t bytes, void **out) {
    vk_dev *d = dev;
    *out = NULL;
    VkDeviceSize maxr = d->props.limits.maxStorageBufferRange;
    if (bytes > maxr || bytes > 0x7fffffffu)
        return ts__error(TS_ERR_LIMIT, "vulkan: a buffer of %zu bytes exceeds the device's storage buffer range (maxStorageBufferRange %llu bytes, "
                         "and 2^31 - 1 for 32-bit shader indices)", bytes, (unsigned long long)maxr);
    vk_buf *b = ts__calloc(1, sizeof *b);
    if (!b) return TS_ERR_OUT_OF_MEMORY;
    ts_status s = make_buffer(d, bytes, d->device_type >= 0 ? d->device_type : d->host_type, b);
    if (s) { free(b); return s; }
    *out = b;
    return TS_OK;
}

static void vk_free_buf(void *dev, void *buf) {
    if (!buf) return;
    drop_buffer(dev, buf);
    free(buf);
}

/* Runs the recorded command buffer and waits. Caller holds d->lock. */
static ts_status submit_wait(vk_dev *d) {
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &d->cmd};
    VkResult r = vkResetFences(d->device, 1, &d->fence);
    if (r == VK_SUCCESS) r = vkQueueSubmit(d->queue, 1, &si, d->fence);
    if (r == VK_SUCCESS) r = vkWaitForFences(d->device, 1, &d->fence, VK_TRUE, UINT64_MAX);
    return r == VK_SUCCESS ? TS_OK : vk_fail(r, "vkQueueSubmit/vkWaitForFences");
}

/* Copies between a device-local buffer and a temporary staging buffer. */
static ts_status staged_copy(vk_dev *d, vk_buf *b, size_t off, void *host, size_t n, int to_device) {
    vk_buf stg;
    ts_status s = make_buffer(d, n, d->host_type, &stg);
    if (s) return s;
    if (to_device) memcpy(stg.map, host, n);
    pthread_mutex_lock(&d->lock);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    vkBeginCommandBuffer(d->cmd, &bi);
    VkBufferCopy c = {.srcOffset = to_device ? 0 : off, .dstOffset = to_device ? off : 0, .size = n};
    vkCmdCopyBuffer(d->cmd, to_device ? stg.buf : b->buf, to_device ? b->buf : stg.buf, 1, &c);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT};
    vkCmdPipelineBarrier(d->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL,
                         0, NULL);
    vkEndCommandBuffer(d->cmd);
    s = submit_wait(d);
    pthread_mutex_unlock(&d->lock);
    if (!s && !to_device) memcpy(host, stg.map, n);
    drop_buffer(d, &stg);
    return s;
}

static ts_status vk_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    vk_buf *b = buf;
    if (off + n > b->size) return ts__error(TS_ERR_INVALID_ARGUMENT, "vulkan: write past the end of a buffer");
    if (n == 0) return TS_OK;
    if (b->map) {
        memcpy((char *)b->map + off, src, n);
        return TS_OK;
    }
    return staged_copy(dev, b, off, (void *)src, n, 1);
}

static ts_status vk_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    vk_buf *b = buf;
    if (off + n > b->size) return ts__error(TS_ERR_INVALID_ARGUMENT, "vulkan: read past the end of a buffer");
    if (n == 0) return TS_OK;
    if (b->map) {
        memcpy(dst, (char *)b->map + off, n);
        return TS_OK;
    }
    return staged_copy(dev, b, off, dst, n, 0);
}

/* ---------------------------------------------------------------- compile */

static void vk_module_free(void *dev, void *module) {
    vk_dev *d = dev;
    vk_module *m = module;
    if (!m) return;
    if (m->pipeline) vkDestroyPipeline(d->device, m->pipeline, NULL);
    if (m->layout) vkDestroyPipelineLayout(d->device, m->layout, NULL);
    if (m->dpool) vkDestroyDescriptorPool(d->device, m->dpool, NULL);
    if (m->dsl) vkDestroyDescriptorSetLayout(d->device, m->dsl, NULL);
    if (m->shader) vkDestroyShaderModule(d->device, m->shader, NULL);
    drop_buffer(d, &m->args);
    free(m);
}

static ts_status vk_compile(void *dev, const ts_compile_request *req, void **module) {
    vk_dev *d = dev;
    *module = NULL;
    const ts__kir *ir = &req->kernel->ir;
    vk_module *m = ts__calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    m->ncgargs = ts__cg_args(ir, m->cgargs, TS__VK_MAX_ARGS);
    m->threads = ts__cg_threads(ir, req->plan);
    for (int p = 0; p < ir->nparams; p++) m->ntensors += ir->params[p].is_tensor;
    if (m->ncgargs > TS__VK_MAX_ARGS || m->ntensors > TS__VK_MAX_TENSORS || (uint32_t)m->ntensors + 1 > d->props.limits.maxPerStageDescriptorStorageBuffers) {
        ts_status s = ts__error(TS_ERR_LIMIT, "vulkan: kernel '%s' has %d tensors / %d arguments (at most %d / %d here)", ts_kernel_name(req->kernel),
                                m->ntensors, m->ncgargs, TS__VK_MAX_TENSORS, TS__VK_MAX_ARGS);
        free(m);
        return s;
    }
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_ATOMIC_ADD && ir->params[ir->ops[i].param].dtype != TS_I32 && !d->atomic_f32) {
            free(m);
            return ts__error(TS_ERR_UNSUPPORTED, "vulkan: kernel '%s' adds atomically to f32 tensor '%s'; device '%s' lacks shaderBufferFloat32AtomicAdd",
                             ts_kernel_name(req->kernel), ir->params[ir->ops[i].param].name, d->props.deviceName);
        }
    uint32_t *words = NULL;
    size_t nwords = 0;
    ts_status s = ts__vk_glsl_to_spirv(req->source, ts_kernel_name(req->kernel), &words, &nwords);
    if (s) { free(m); return s; }
    VkResult r;
    VkShaderModuleCreateInfo smi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = nwords * 4, .pCode = words};
    if ((r = vkCreateShaderModule(d->device, &smi, NULL, &m->shader)) != VK_SUCCESS) s = vk_fail(r, "vkCreateShaderModule");
    free(words);
    VkDescriptorSetLayoutBinding bind[TS__VK_MAX_TENSORS + 1];
    uint32_t nb = (uint32_t)m->ntensors + 1;
    for (uint32_t i = 0; i < nb; i++)
        bind[i] = (VkDescriptorSetLayoutBinding){.binding = i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 1,
                                                 .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    if (!s) {
        VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, .bindingCount = nb, .pBindings = bind};
        if ((r = vkCreateDescriptorSetLayout(d->device, &li, NULL, &m->dsl)) != VK_SUCCESS) s = vk_fail(r, "vkCreateDescriptorSetLayout");
    }
    if (!s) {
        VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1, .pSetLayouts = &m->dsl};
        if ((r = vkCreatePipelineLayout(d->device, &pli, NULL, &m->layout)) != VK_SUCCESS) s = vk_fail(r, "vkCreatePipelineLayout");
    }
    if (!s) {
        VkComputePipelineCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                                           .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                                                     .module = m->shader, .pName = "main"},
                                           .layout = m->layout};
        pthread_mutex_lock(&d->lock); /* the pipeline cache is externally synchronized */
        r = vkCreateComputePipelines(d->device, d->pcache, 1, &cpi, NULL, &m->pipeline);
        pthread_mutex_unlock(&d->lock);
        if (r != VK_SUCCESS) s = vk_fail(r, "vkCreateComputePipelines");
    }
    if (!s) {
        VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = nb};
        VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = 1, .poolSizeCount = 1, .pPoolSizes = &ps};
        if ((r = vkCreateDescriptorPool(d->device, &dpi, NULL, &m->dpool)) != VK_SUCCESS) s = vk_fail(r, "vkCreateDescriptorPool");
    }
    if (!s) {
        VkDescriptorSetAllocateInfo dai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO, .descriptorPool = m->dpool, .descriptorSetCount = 1,
                                           .pSetLayouts = &m->dsl};
        if ((r = vkAllocateDescriptorSets(d->device, &dai, &m->set)) != VK_SUCCESS) s = vk_fail(r, "vkAllocateDescriptorSets");
    }
    if (!s) s = make_buffer(d, (VkDeviceSize)(m->ncgargs + 1) * 4, d->host_type, &m->args);
    if (s) {
        vk_module_free(d, m);
        return s;
    }
    *module = m;
    return TS_OK;
}

/* ---------------------------------------------------------------- launch */

static ts_status vk_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    vk_dev *d = dev;
    vk_module *m = module;
    const char *kn = ts_kernel_name(req->kernel);
    /* the argument block: every value as 32 bits (int, or float bits),
     * copied into the module's block under the device lock */
    uint32_t a[TS__VK_MAX_ARGS + 1];
    int k = 0;
    VkDescriptorBufferInfo bi[TS__VK_MAX_TENSORS + 1];
    VkWriteDescriptorSet wr[TS__VK_MAX_TENSORS + 1];
    int nt = 0;
    for (int i = 0; i < m->ncgargs; i++) {
        const ts__cg_arg *ga = &m->cgargs[i];
        if (ga->kind == TS__ARG_BUFFER) {
            vk_buf *b = req->args[ga->param].buffer;
            if (!b) return ts__error(TS_ERR_BAD_ARGS, "vulkan: '%s': tensor argument %d has no buffer", kn, ga->param);
            nt++;
            bi[nt] = (VkDescriptorBufferInfo){.buffer = b->buf, .offset = 0, .range = VK_WHOLE_SIZE};
            continue;
        }
        if (ga->kind == TS__ARG_F32) {
            float f = (float)ts__cg_arg_f64(ga, req->args);
            memcpy(&a[k++], &f, 4);
        } else if (ga->kind == TS__ARG_I64 || ga->kind == TS__ARG_I32) {
            int64_t v = ga->kind == TS__ARG_I32 ? req->args[ga->param].i : ts__cg_arg_i64(ga, req->args, req->sizes);
            if (v < INT32_MIN || v > INT32_MAX)
                return ts__error(TS_ERR_LIMIT, "vulkan: '%s': argument %d (%lld) does not fit the shaders' 32-bit indices", kn, i, (long long)v);
            int32_t w = (int32_t)v;
            memcpy(&a[k++], &w, 4);
        } else return ts__error(TS_ERR_UNSUPPORTED, "vulkan: '%s': f64 arguments are not supported", kn);
    }
    a[k] = 0;
    bi[0] = (VkDescriptorBufferInfo){.buffer = m->args.buf, .offset = 0, .range = VK_WHOLE_SIZE};
    for (int i = 0; i <= nt; i++)
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = m->set, .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i]};
    for (int g = 0; g < 3; g++)
        if (req->grid[g] > d->props.limits.maxComputeWorkGroupCount[g])
            return ts__error(TS_ERR_LIMIT, "vulkan: '%s': grid dim %d has %lld programs, the device allows %u", kn, g, (long long)req->grid[g],
                             d->props.limits.maxComputeWorkGroupCount[g]);
    if (req->grid[0] <= 0 || req->grid[1] <= 0 || req->grid[2] <= 0) {
        if (ms) *ms = 0;
        return TS_OK;
    }
    pthread_mutex_lock(&d->lock);
    memcpy(m->args.map, a, (size_t)(k + 1) * 4);
    vkUpdateDescriptorSets(d->device, (uint32_t)nt + 1, wr, 0, NULL);
    VkCommandBufferBeginInfo cbi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    vkBeginCommandBuffer(d->cmd, &cbi);
    VkMemoryBarrier pre = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_HOST_WRITE_BIT,
                           .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    vkCmdPipelineBarrier(d->cmd, VK_PIPELINE_STAGE_HOST_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &pre, 0, NULL, 0, NULL);
    if (d->queries) {
        vkCmdResetQueryPool(d->cmd, d->queries, 0, 2);
        vkCmdWriteTimestamp(d->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, d->queries, 0);
    }
    vkCmdBindPipeline(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, m->pipeline);
    vkCmdBindDescriptorSets(d->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, m->layout, 0, 1, &m->set, 0, NULL);
    vkCmdDispatch(d->cmd, (uint32_t)req->grid[0], (uint32_t)req->grid[1], (uint32_t)req->grid[2]);
    if (d->queries) vkCmdWriteTimestamp(d->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, d->queries, 1);
    VkMemoryBarrier post = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                            .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_SHADER_READ_BIT};
    vkCmdPipelineBarrier(d->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &post, 0, NULL,
                         0, NULL);
    VkResult r = vkEndCommandBuffer(d->cmd);
    ts_status s = r == VK_SUCCESS ? submit_wait(d) : vk_fail(r, "vkEndCommandBuffer");
    if (!s && ms) {
        *ms = 0;
        uint64_t t[2];
        if (d->queries &&
            vkGetQueryPoolResults(d->device, d->queries, 0, 2, sizeof t, t, sizeof t[0], VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS)
            *ms = (double)((t[1] - t[0]) & d->ts_mask) * d->ts_period_ns / 1e6;
    }
    pthread_mutex_unlock(&d->lock);
    if (s) {
        char why[512];
        snprintf(why, sizeof why, "%s", ts_last_error());
        return ts__error(s == TS_ERR_OUT_OF_MEMORY ? s : TS_ERR_LAUNCH, "'%s' failed while running: %s", kn, why);
    }
    return TS_OK;
}

static ts_status vk_sync(void *dev) {
    vk_dev *d = dev;
    VkResult r = vkQueueWaitIdle(d->queue);
    return r == VK_SUCCESS ? TS_OK : vk_fail(r, "vkQueueWaitIdle");
}

static const ts_backend vulkan_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "vulkan",
    .dialect = TS_DIALECT_GLSL,
    .init = vk_init,
    .shutdown = vk_shutdown,
    .device_count = vk_device_count,
    .device_open = vk_device_open,
    .device_close = vk_device_close,
    .buffer_alloc = vk_alloc,
    .buffer_free = vk_free_buf,
    .buffer_write = vk_write,
    .buffer_read = vk_read,
    .compile = vk_compile,
    .module_free = vk_module_free,
    .launch = vk_launch,
    .synchronize = vk_sync,
};

const ts_backend *ts__vulkan_backend(void) { return &vulkan_backend; }
