/*
 * fake_nvml.c - a stand-in for NVIDIA's libnvidia-ml.so.1, for tests only.
 *
 * The test suite compiles this file into a directory of its own as
 * libnvidia-ml.so.1 and puts that directory on LD_LIBRARY_PATH, so that the
 * real pynvml binding (nvidia-ml-py: CDLL("libnvidia-ml.so.1")) and tools
 * built on it (nvitop) talk to it as if it were the driver's library.
 *
 *   gcc -shared -fPIC -O2 -o libnvidia-ml.so.1 fake_nvml.c -lm
 *
 * Data comes from a text file named by the environment variable
 * NOMADLAB_FAKE_NVML (format: see tests/standins/nvml.py).  The file is
 * re-read on every nvmlInit* call, and by any call when its inode, size,
 * mtime or ctime changed.  NOMADLAB_FAKE_NVML_TIME=<seconds>, when set,
 * replaces the clock that drives the "wave" mode.
 *
 * Functions that are not exported raise NVMLError_FunctionNotFound in
 * pynvml, which callers are expected to treat as "not available".
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------ */
/* NVML types and constants (values from nvml.h / pynvml.py)           */
/* ------------------------------------------------------------------ */

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_ALREADY_INITIALIZED 5
#define NVML_ERROR_NOT_FOUND 6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_INSUFFICIENT_POWER 8
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT 10
#define NVML_ERROR_IRQ_ISSUE 11
#define NVML_ERROR_LIBRARY_NOT_FOUND 12
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_CORRUPTED_INFOROM 14
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_RESET_REQUIRED 16
#define NVML_ERROR_OPERATING_SYSTEM 17
#define NVML_ERROR_LIB_RM_VERSION_MISMATCH 18
#define NVML_ERROR_IN_USE 19
#define NVML_ERROR_MEMORY 20
#define NVML_ERROR_NO_DATA 21
#define NVML_ERROR_VGPU_ECC_NOT_SUPPORTED 22
#define NVML_ERROR_INSUFFICIENT_RESOURCES 23
#define NVML_ERROR_FREQ_NOT_SUPPORTED 24
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_DEPRECATED 26
#define NVML_ERROR_NOT_READY 27
#define NVML_ERROR_GPU_NOT_FOUND 28
#define NVML_ERROR_INVALID_STATE 29
#define NVML_ERROR_UNKNOWN 999

#define NVML_TEMPERATURE_GPU 0

#define NVML_TEMPERATURE_THRESHOLD_SHUTDOWN 0
#define NVML_TEMPERATURE_THRESHOLD_SLOWDOWN 1
#define NVML_TEMPERATURE_THRESHOLD_MEM_MAX 2
#define NVML_TEMPERATURE_THRESHOLD_GPU_MAX 3

#define NVML_CLOCK_GRAPHICS 0
#define NVML_CLOCK_SM 1
#define NVML_CLOCK_MEM 2
#define NVML_CLOCK_VIDEO 3

#define NVML_PCIE_UTIL_TX_BYTES 0
#define NVML_PCIE_UTIL_RX_BYTES 1

#define NVML_BRAND_NVIDIA 14
#define NVML_DEVICE_ARCH_HOPPER 9

/* struct versions: sizeof(struct) | (version << 24) */
#define NVML_MEMORY_V2_VERSION 0x02000028u
#define NVML_TEMPERATURE_V1_VERSION 0x0100000Cu

#define MIB 1048576ULL
#define NO_INSTANCE 0xFFFFFFFFu

#define MAX_GPUS 64
#define MAX_PROCS 1024
#define MAX_XIDS 256
#define MAX_MIGS 64
#define MIG_INDEX_BASE 1000u
#define MAX_EVENT_SETS 16
#define NVLINK_MAX_LINKS 18
#define STR_LEN 96
#define PROC_NAME_LEN 256
#define FAKE_PI 3.14159265358979323846

/* c_nvmlMemory_t */
typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

/* c_nvmlMemory_v2_t */
typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

/* c_nvmlBAR1Memory_t */
typedef struct {
    unsigned long long bar1Total;
    unsigned long long bar1Free;
    unsigned long long bar1Used;
} nvmlBAR1Memory_t;

/* c_nvmlUtilization_t */
typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

/* nvmlProcessInfo_v1_t (unsuffixed nvmlDevice*RunningProcesses) */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* c_nvmlProcessInfo_v2_t == c_nvmlProcessInfo_v3_t in pynvml (_v2 and _v3) */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t;

/* nvmlPciInfo_v2_t in pynvml: layout written by nvmlDeviceGetPciInfo{,_v2} */
typedef struct {
    char busId[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    unsigned int reserved0;
    unsigned int reserved1;
    unsigned int reserved2;
    unsigned int reserved3;
} nvmlPciInfoLegacy_t;

/* nvmlPciInfo_t in pynvml: layout written by nvmlDeviceGetPciInfo_v3 */
typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

/* c_nvmlTemperature_v1_t */
typedef struct {
    unsigned int version;
    int sensorType;
    int temperature;
} nvmlTemperature_v1_t;

/* ------------------------------------------------------------------ */
/* Fake state                                                          */
/* ------------------------------------------------------------------ */

typedef struct nvmlDevice_st {
    unsigned int index;
    char name[STR_LEN];
    char uuid[STR_LEN];
    char bus_id[32];
    unsigned int util;
    unsigned int memutil;
    unsigned long long mem_total_mib;
    unsigned long long mem_used_mib;
    unsigned long long mem_reserved_mib;
    int temp;
    unsigned int power_mw;
    unsigned int limit_mw;
    int fan; /* < 0: not supported */
    unsigned int pstate;
    unsigned int clock_sm_mhz; /* 0: derived from util */
    unsigned int clock_mem_mhz;
    unsigned int max_clock_sm_mhz;
    unsigned int max_clock_mem_mhz;
    unsigned int pci_device_id;
    unsigned int pci_subsys_id;
    unsigned int pcie_gen;
    unsigned int pcie_width;
    int cc_major;
    int cc_minor;
    unsigned int arch;
    unsigned int brand;
    int fail; /* nonzero: every per-device query returns this code */
    /* health (see tests/standins/nvml.py) */
    unsigned long long throttle; /* nvmlClocksEventReasons bit mask */
    unsigned int max_pcie_gen;   /* 0: same as pcie_gen */
    unsigned int max_pcie_width; /* 0: same as pcie_width */
    int ecc_mode;                /* < 0: not supported */
    unsigned long long ecc_vol_corr, ecc_vol_unc, ecc_agg_corr, ecc_agg_unc;
    int remap;                   /* < 0: nvmlDeviceGetRemappedRows not supported */
    unsigned int remap_corr, remap_unc, remap_pending, remap_failure;
    unsigned int nvlinks;        /* number of NVLinks */
    unsigned int nvlink_down;    /* bit mask of links that are down */
    unsigned int persistence;
    unsigned int compute_mode;
    long long energy_mj;         /* < 0: not supported */
    int mig;                     /* MIG mode: 0 off, 1 on, < 0 not supported */
    unsigned int parent;         /* MIG device: index of its GPU */
    unsigned int gi_id;          /* MIG device: GPU instance id */
} gpu_t;

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned int gpu;
    unsigned int pid;
    unsigned long long mem_mib;
    char name[PROC_NAME_LEN];
    int mig; /* < 0: none; else the index of the [mig] section it runs in */
} proc_t;

typedef struct {
    unsigned int gpu;
    unsigned int code;
} xid_t;

typedef struct {
    char driver[80];
    char nvml_version[80];
    int cuda;
    int wave;
    int fail_init;
    unsigned int ngpus;
    unsigned int nprocs;
    gpu_t gpus[MAX_GPUS];
    proc_t procs[MAX_PROCS];
    unsigned int nxids;
    xid_t xids[MAX_XIDS];
    unsigned int nmigs;
    gpu_t migs[MAX_MIGS]; /* MIG devices; index = MIG_INDEX_BASE + position */
} state_t;

typedef struct {
    int valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
} file_id_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refcount;
static state_t g_state; /* handles point into g_state.gpus: stable across reloads */
static state_t g_scratch;
static file_id_t g_file_id;

/* ------------------------------------------------------------------ */
/* Data file parsing                                                   */
/* ------------------------------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

static long long parse_ll(const char *v)
{
    int neg = 0;
    const char *p = v;
    if (*p == '-' || *p == '+') {
        neg = (*p == '-');
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        unsigned long long u = strtoull(p + 2, NULL, 16);
        return neg ? -(long long)u : (long long)u;
    }
    return strtoll(v, NULL, 10);
}

static unsigned long long parse_ull(const char *v)
{
    long long x = parse_ll(v);
    return x < 0 ? 0ULL : (unsigned long long)x;
}

static unsigned int parse_uint(const char *v)
{
    unsigned long long x = parse_ull(v);
    return x > 0xFFFFFFFFULL ? 0xFFFFFFFFu : (unsigned int)x;
}

static int parse_int(const char *v)
{
    long long x = parse_ll(v);
    if (x > 0x7FFFFFFFLL)
        return 0x7FFFFFFF;
    if (x < -0x7FFFFFFFLL)
        return -0x7FFFFFFF;
    return (int)x;
}

static void gpu_defaults(gpu_t *g, unsigned int index)
{
    memset(g, 0, sizeof(*g));
    g->index = index;
    copy_str(g->name, sizeof(g->name), "NVIDIA H100 80GB HBM3");
    snprintf(g->uuid, sizeof(g->uuid), "GPU-00000000-0000-0000-0000-%012u", index);
    snprintf(g->bus_id, sizeof(g->bus_id), "00000000:%02X:00.0", (index + 0x18u) & 0xFFu);
    g->mem_total_mib = 81559;
    g->temp = 30;
    g->power_mw = 69000;
    g->limit_mw = 700000;
    g->fan = 0;
    g->max_clock_sm_mhz = 1980;
    g->max_clock_mem_mhz = 2619;
    g->pci_device_id = 0x233010DEu;
    g->pci_subsys_id = 0x16C110DEu;
    g->pcie_gen = 5;
    g->pcie_width = 16;
    g->cc_major = 9;
    g->cc_minor = 0;
    g->arch = NVML_DEVICE_ARCH_HOPPER;
    g->brand = NVML_BRAND_NVIDIA;
    g->ecc_mode = 1;
    g->remap = 1;
    g->persistence = 1;
    g->energy_mj = 0;
    g->mig = 0;
}

static void set_gpu_key(gpu_t *g, const char *k, const char *v)
{
    if (!strcmp(k, "name"))
        copy_str(g->name, sizeof(g->name), v);
    else if (!strcmp(k, "uuid"))
        copy_str(g->uuid, sizeof(g->uuid), v);
    else if (!strcmp(k, "bus_id"))
        copy_str(g->bus_id, sizeof(g->bus_id), v);
    else if (!strcmp(k, "util"))
        g->util = parse_uint(v);
    else if (!strcmp(k, "memutil"))
        g->memutil = parse_uint(v);
    else if (!strcmp(k, "mem_total_mib"))
        g->mem_total_mib = parse_ull(v);
    else if (!strcmp(k, "mem_used_mib"))
        g->mem_used_mib = parse_ull(v);
    else if (!strcmp(k, "mem_reserved_mib"))
        g->mem_reserved_mib = parse_ull(v);
    else if (!strcmp(k, "temp"))
        g->temp = parse_int(v);
    else if (!strcmp(k, "power_mw"))
        g->power_mw = parse_uint(v);
    else if (!strcmp(k, "limit_mw"))
        g->limit_mw = parse_uint(v);
    else if (!strcmp(k, "fan"))
        g->fan = (!strcmp(v, "na") || !strcmp(v, "NA") || !strcmp(v, "")) ? -1 : parse_int(v);
    else if (!strcmp(k, "pstate"))
        g->pstate = parse_uint(v);
    else if (!strcmp(k, "clock_sm_mhz"))
        g->clock_sm_mhz = parse_uint(v);
    else if (!strcmp(k, "clock_mem_mhz"))
        g->clock_mem_mhz = parse_uint(v);
    else if (!strcmp(k, "max_clock_sm_mhz"))
        g->max_clock_sm_mhz = parse_uint(v);
    else if (!strcmp(k, "max_clock_mem_mhz"))
        g->max_clock_mem_mhz = parse_uint(v);
    else if (!strcmp(k, "pci_device_id"))
        g->pci_device_id = parse_uint(v);
    else if (!strcmp(k, "pci_subsys_id"))
        g->pci_subsys_id = parse_uint(v);
    else if (!strcmp(k, "pcie_gen"))
        g->pcie_gen = parse_uint(v);
    else if (!strcmp(k, "pcie_width"))
        g->pcie_width = parse_uint(v);
    else if (!strcmp(k, "cc_major"))
        g->cc_major = parse_int(v);
    else if (!strcmp(k, "cc_minor"))
        g->cc_minor = parse_int(v);
    else if (!strcmp(k, "arch"))
        g->arch = parse_uint(v);
    else if (!strcmp(k, "brand"))
        g->brand = parse_uint(v);
    else if (!strcmp(k, "fail"))
        g->fail = parse_int(v);
    else if (!strcmp(k, "throttle"))
        g->throttle = parse_ull(v);
    else if (!strcmp(k, "max_pcie_gen"))
        g->max_pcie_gen = parse_uint(v);
    else if (!strcmp(k, "max_pcie_width"))
        g->max_pcie_width = parse_uint(v);
    else if (!strcmp(k, "ecc_mode"))
        g->ecc_mode = (!strcmp(v, "na") || !strcmp(v, "NA")) ? -1 : parse_int(v);
    else if (!strcmp(k, "ecc_volatile_corrected"))
        g->ecc_vol_corr = parse_ull(v);
    else if (!strcmp(k, "ecc_volatile_uncorrected"))
        g->ecc_vol_unc = parse_ull(v);
    else if (!strcmp(k, "ecc_aggregate_corrected"))
        g->ecc_agg_corr = parse_ull(v);
    else if (!strcmp(k, "ecc_aggregate_uncorrected"))
        g->ecc_agg_unc = parse_ull(v);
    else if (!strcmp(k, "remap"))
        g->remap = (!strcmp(v, "na") || !strcmp(v, "NA")) ? -1 : parse_int(v);
    else if (!strcmp(k, "remap_corrected"))
        g->remap_corr = parse_uint(v);
    else if (!strcmp(k, "remap_uncorrected"))
        g->remap_unc = parse_uint(v);
    else if (!strcmp(k, "remap_pending"))
        g->remap_pending = parse_uint(v);
    else if (!strcmp(k, "remap_failure"))
        g->remap_failure = parse_uint(v);
    else if (!strcmp(k, "nvlinks"))
        g->nvlinks = parse_uint(v);
    else if (!strcmp(k, "nvlink_down"))
        g->nvlink_down = parse_uint(v);
    else if (!strcmp(k, "persistence"))
        g->persistence = parse_uint(v);
    else if (!strcmp(k, "compute_mode"))
        g->compute_mode = parse_uint(v);
    else if (!strcmp(k, "energy_mj"))
        g->energy_mj = (!strcmp(v, "na") || !strcmp(v, "NA")) ? -1 : parse_ll(v);
    else if (!strcmp(k, "mig"))
        g->mig = (!strcmp(v, "na") || !strcmp(v, "NA")) ? -1 : parse_int(v);
    /* unknown keys are ignored */
}

static void set_proc_key(proc_t *p, const char *k, const char *v)
{
    if (!strcmp(k, "gpu"))
        p->gpu = parse_uint(v);
    else if (!strcmp(k, "pid"))
        p->pid = parse_uint(v);
    else if (!strcmp(k, "mem_mib"))
        p->mem_mib = parse_ull(v);
    else if (!strcmp(k, "name"))
        copy_str(p->name, sizeof(p->name), v);
    else if (!strcmp(k, "mig"))
        p->mig = parse_int(v);
}

static void set_xid_key(xid_t *x, const char *k, const char *v)
{
    if (!strcmp(k, "gpu"))
        x->gpu = parse_uint(v);
    else if (!strcmp(k, "code"))
        x->code = parse_uint(v);
}

/* [mig]: gpu= (parent index), gi= (GPU instance id), profile= (e.g. 3g.40gb),
 * mem_total_mib=, mem_used_mib= */
static void set_mig_key(state_t *s, gpu_t *m, const char *k, const char *v)
{
    if (!strcmp(k, "gpu")) {
        m->parent = parse_uint(v);
        if (m->parent < s->ngpus) {
            snprintf(m->name, sizeof(m->name), "%s MIG", s->gpus[m->parent].name);
            snprintf(m->uuid, sizeof(m->uuid), "MIG-%08u-0000-0000-0000-%012u", m->parent,
                     m->index);
        }
    } else if (!strcmp(k, "gi"))
        m->gi_id = parse_uint(v);
    else if (!strcmp(k, "profile")) {
        char base[STR_LEN];
        copy_str(base, sizeof(base), m->parent < s->ngpus ? s->gpus[m->parent].name : "NVIDIA");
        snprintf(m->name, sizeof(m->name), "%.60s MIG %.30s", base, v);
    } else if (!strcmp(k, "mem_total_mib"))
        m->mem_total_mib = parse_ull(v);
    else if (!strcmp(k, "mem_used_mib"))
        m->mem_used_mib = parse_ull(v);
}

static void set_global_key(state_t *s, const char *k, const char *v)
{
    if (!strcmp(k, "driver"))
        copy_str(s->driver, sizeof(s->driver), v);
    else if (!strcmp(k, "nvml_version"))
        copy_str(s->nvml_version, sizeof(s->nvml_version), v);
    else if (!strcmp(k, "cuda"))
        s->cuda = parse_int(v);
    else if (!strcmp(k, "wave"))
        s->wave = parse_int(v);
    else if (!strcmp(k, "fail_init"))
        s->fail_init = parse_int(v);
}

enum { SEC_GLOBAL, SEC_GPU, SEC_PROC, SEC_XID, SEC_MIG, SEC_OTHER };

/* Parse the file into *s.  Returns 0 on success, -1 if it cannot be read. */
static int parse_file(const char *path, state_t *s)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int section = SEC_GLOBAL;
    int gpu_ok = 0, proc_ok = 0, xid_ok = 0, mig_ok = 0;

    if (!f)
        return -1;
    memset(s, 0, sizeof(*s));
    copy_str(s->driver, sizeof(s->driver), "590.48.01");
    s->cuda = 13010;

    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        char *hash, *eq, *key, *val;
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            /* over-long line: drop the rest of it */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
        }
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        key = trim(line);
        if (*key == '\0')
            continue;
        if (*key == '[') {
            if (!strcmp(key, "[gpu]")) {
                section = SEC_GPU;
                gpu_ok = s->ngpus < MAX_GPUS;
                if (gpu_ok) {
                    gpu_defaults(&s->gpus[s->ngpus], s->ngpus);
                    s->ngpus++;
                }
            } else if (!strcmp(key, "[proc]")) {
                section = SEC_PROC;
                proc_ok = s->nprocs < MAX_PROCS;
                if (proc_ok) {
                    memset(&s->procs[s->nprocs], 0, sizeof(s->procs[0]));
                    s->procs[s->nprocs].mig = -1;
                    s->nprocs++;
                }
            } else if (!strcmp(key, "[xid]")) {
                section = SEC_XID;
                xid_ok = s->nxids < MAX_XIDS;
                if (xid_ok) {
                    memset(&s->xids[s->nxids], 0, sizeof(s->xids[0]));
                    s->nxids++;
                }
            } else if (!strcmp(key, "[mig]")) {
                section = SEC_MIG;
                mig_ok = s->nmigs < MAX_MIGS;
                if (mig_ok) {
                    gpu_t *m = &s->migs[s->nmigs];
                    gpu_defaults(m, MIG_INDEX_BASE + s->nmigs);
                    m->mig = -1;
                    m->mem_total_mib = 9984;
                    s->nmigs++;
                }
            } else {
                section = SEC_OTHER;
            }
            continue;
        }
        eq = strchr(key, '=');
        if (!eq)
            continue;
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        if (section == SEC_GLOBAL)
            set_global_key(s, key, val);
        else if (section == SEC_GPU && gpu_ok)
            set_gpu_key(&s->gpus[s->ngpus - 1], key, val);
        else if (section == SEC_PROC && proc_ok)
            set_proc_key(&s->procs[s->nprocs - 1], key, val);
        else if (section == SEC_XID && xid_ok)
            set_xid_key(&s->xids[s->nxids - 1], key, val);
        else if (section == SEC_MIG && mig_ok)
            set_mig_key(s, &s->migs[s->nmigs - 1], key, val);
    }
    fclose(f);
    if (s->nvml_version[0] == '\0')
        snprintf(s->nvml_version, sizeof(s->nvml_version), "%d.%s", s->cuda / 1000, s->driver);
    return 0;
}

static int stat_file(const char *path, file_id_t *id)
{
    struct stat st;
    memset(id, 0, sizeof(*id));
    if (stat(path, &st) != 0)
        return -1;
    id->valid = 1;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
    id->ctime = st.st_ctim;
    return 0;
}

static int same_file_id(const file_id_t *a, const file_id_t *b)
{
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Load the data file into g_state (lock held).  force: ignore the file id. */
static int reload(int force)
{
    const char *path = getenv("NOMADLAB_FAKE_NVML");
    file_id_t id;

    if (!path || !*path)
        return -1;
    if (stat_file(path, &id) != 0)
        return -1;
    if (!force && same_file_id(&id, &g_file_id))
        return 0;
    if (parse_file(path, &g_scratch) != 0)
        return -1;
    g_state = g_scratch;
    g_file_id = id;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Time and wave                                                       */
/* ------------------------------------------------------------------ */

static double now_seconds(void)
{
    const char *env = getenv("NOMADLAB_FAKE_NVML_TIME");
    struct timespec ts;
    if (env && *env) {
        char *end;
        double t = strtod(env, &end);
        if (end != env)
            return t;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned int round_clamp(double x, double lo, double hi)
{
    double r = floor(x + 0.5);
    if (r < lo)
        r = lo;
    if (r > hi)
        r = hi;
    return (unsigned int)r;
}

typedef struct {
    unsigned int util;
    unsigned int memutil;
    unsigned int temp;
    unsigned int power_mw;
} live_t;

/*
 * Values at this instant.  With wave=1, a GPU whose util is > 0 follows
 *   f = 0.75 + 0.25 * sin(2*pi*t/13 + index)           (in [0.5, 1])
 *   util = round(util * f), memutil = round(memutil * f)  (clamped 0..100)
 *   temp = round(temp * (0.8 + 0.2*f)), power = round(power * (0.6 + 0.4*f))
 * (round(x) = floor(x + 0.5)); idle GPUs (util 0) stay constant.
 */
static live_t live_values(const gpu_t *g)
{
    live_t v;
    v.util = g->util > 100 ? 100 : g->util;
    v.memutil = g->memutil > 100 ? 100 : g->memutil;
    v.temp = g->temp < 0 ? 0u : (unsigned int)g->temp;
    v.power_mw = g->power_mw;
    if (g_state.wave && g->util > 0) {
        double t = now_seconds();
        double f = 0.75 + 0.25 * sin(2.0 * FAKE_PI * t / 13.0 + (double)g->index);
        v.util = round_clamp((double)g->util * f, 0.0, 100.0);
        v.memutil = round_clamp((double)g->memutil * f, 0.0, 100.0);
        v.temp = round_clamp((double)g->temp * (0.8 + 0.2 * f), 0.0, 4294967295.0);
        v.power_mw = round_clamp((double)g->power_mw * (0.6 + 0.4 * f), 0.0, 4294967295.0);
    }
    return v;
}

/* ------------------------------------------------------------------ */
/* Entry/exit helpers                                                  */
/* ------------------------------------------------------------------ */

/* Lock and check initialisation; on failure the lock is released. */
static nvmlReturn_t enter(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_refcount <= 0) {
        pthread_mutex_unlock(&g_lock);
        return NVML_ERROR_UNINITIALIZED;
    }
    reload(0); /* on failure keep the last good data */
    return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t rc)
{
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static int valid_mig_handle(nvmlDevice_t d)
{
    uintptr_t base = (uintptr_t)g_state.migs;
    uintptr_t p = (uintptr_t)d;
    if (!d || p < base)
        return 0;
    if ((p - base) % sizeof(gpu_t) != 0)
        return 0;
    return (p - base) / sizeof(gpu_t) < g_state.nmigs;
}

static int valid_handle(nvmlDevice_t d)
{
    uintptr_t base = (uintptr_t)g_state.gpus;
    uintptr_t p = (uintptr_t)d;
    if (valid_mig_handle(d))
        return 1;
    if (!d || p < base)
        return 0;
    if ((p - base) % sizeof(gpu_t) != 0)
        return 0;
    return (p - base) / sizeof(gpu_t) < g_state.ngpus;
}

/* Lock, check init, the handle and a pointer argument; on failure unlocked. */
static nvmlReturn_t dev_enter(nvmlDevice_t d, int ptr_ok)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!valid_handle(d) || !ptr_ok)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (d->fail)
        return leave(d->fail);
    return NVML_SUCCESS;
}

#define DEV_ENTER(dev, ptr_ok)                                                                 \
    do {                                                                                       \
        nvmlReturn_t rc_ = dev_enter((dev), (ptr_ok));                                         \
        if (rc_ != NVML_SUCCESS)                                                               \
            return rc_;                                                                        \
    } while (0)

static nvmlReturn_t put_str(char *buf, unsigned int length, const char *s)
{
    size_t n = strlen(s);
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if ((size_t)length < n + 1)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, n + 1);
    return NVML_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Init / shutdown / errors                                            */
/* ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    nvmlReturn_t rc = NVML_SUCCESS;
    (void)flags;
    pthread_mutex_lock(&g_lock);
    if (reload(1) != 0) {
        rc = NVML_ERROR_DRIVER_NOT_LOADED;
    } else if (g_state.fail_init != 0) {
        rc = g_state.fail_init;
    } else {
        g_refcount++;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    return nvmlInitWithFlags(0);
}

EXPORT nvmlReturn_t nvmlInit(void)
{
    return nvmlInitWithFlags(0);
}

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    nvmlReturn_t rc = NVML_SUCCESS;
    pthread_mutex_lock(&g_lock);
    if (g_refcount <= 0)
        rc = NVML_ERROR_UNINITIALIZED;
    else
        g_refcount--;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not Ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    default: return "Unknown Error";
    }
}

/* ------------------------------------------------------------------ */
/* System queries                                                      */
/* ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    return leave(put_str(version, length, g_state.driver));
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    return leave(put_str(version, length, g_state.nvml_version));
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!cudaDriverVersion)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    *cudaDriverVersion = g_state.cuda;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

EXPORT nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    unsigned int i;
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!name || length == 0)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (i = 0; i < g_state.nprocs; i++) {
        if (g_state.procs[i].pid == pid && g_state.procs[i].name[0] != '\0') {
            /* NVML truncates rather than failing here */
            copy_str(name, length, g_state.procs[i].name);
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

/* ------------------------------------------------------------------ */
/* Device enumeration                                                  */
/* ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!deviceCount)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    *deviceCount = g_state.ngpus;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!device || index >= g_state.ngpus)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    *device = &g_state.gpus[index];
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    unsigned int i;
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!uuid || !device)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (i = 0; i < g_state.ngpus; i++) {
        if (!strcmp(g_state.gpus[i].uuid, uuid)) {
            *device = &g_state.gpus[i];
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

static int parse_bus_id(const char *s, unsigned int *dom, unsigned int *bus, unsigned int *dev,
                        unsigned int *fn)
{
    *dom = *bus = *dev = *fn = 0;
    if (sscanf(s, "%x:%x:%x.%x", dom, bus, dev, fn) == 4)
        return 0;
    *dom = 0;
    if (sscanf(s, "%x:%x.%x", bus, dev, fn) == 3)
        return 0;
    return -1;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
    unsigned int i, d0, b0, v0, f0, d1, b1, v1, f1;
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!pciBusId || !device || parse_bus_id(pciBusId, &d0, &b0, &v0, &f0) != 0)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (i = 0; i < g_state.ngpus; i++) {
        if (parse_bus_id(g_state.gpus[i].bus_id, &d1, &b1, &v1, &f1) == 0 && d0 == d1 &&
            b0 == b1 && v0 == v1 && f0 == f1) {
            *device = &g_state.gpus[i];
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    DEV_ENTER(device, index != NULL);
    *index = device->index;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    DEV_ENTER(device, minorNumber != NULL);
    *minorNumber = device->index;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Device identity                                                     */
/* ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    DEV_ENTER(device, name != NULL);
    return leave(put_str(name, length, device->name));
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    DEV_ENTER(device, uuid != NULL);
    return leave(put_str(uuid, length, device->uuid));
}

EXPORT nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, unsigned int *type)
{
    DEV_ENTER(device, type != NULL);
    *type = device->brand;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned int *arch)
{
    DEV_ENTER(device, arch != NULL);
    *arch = device->arch;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major,
                                                       int *minor)
{
    DEV_ENTER(device, major != NULL && minor != NULL);
    *major = device->cc_major;
    *minor = device->cc_minor;
    return leave(NVML_SUCCESS);
}

static void fill_pci_common(const gpu_t *g, unsigned int *domain, unsigned int *bus,
                            unsigned int *dev, char *legacy)
{
    unsigned int fn;
    parse_bus_id(g->bus_id, domain, bus, dev, &fn);
    snprintf(legacy, 16, "%04X:%02X:%02X.%X", *domain & 0xFFFFu, *bus & 0xFFu, *dev & 0xFFu,
             fn & 0xFu);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    DEV_ENTER(device, pci != NULL);
    memset(pci, 0, sizeof(*pci));
    fill_pci_common(device, &pci->domain, &pci->bus, &pci->device, pci->busIdLegacy);
    pci->pciDeviceId = device->pci_device_id;
    pci->pciSubSystemId = device->pci_subsys_id;
    copy_str(pci->busId, sizeof(pci->busId), device->bus_id);
    return leave(NVML_SUCCESS);
}

static nvmlReturn_t pci_info_legacy(nvmlDevice_t device, nvmlPciInfoLegacy_t *pci)
{
    DEV_ENTER(device, pci != NULL);
    memset(pci, 0, sizeof(*pci));
    fill_pci_common(device, &pci->domain, &pci->bus, &pci->device, pci->busId);
    pci->pciDeviceId = device->pci_device_id;
    pci->pciSubSystemId = device->pci_subsys_id;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfoLegacy_t *pci)
{
    return pci_info_legacy(device, pci);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfoLegacy_t *pci)
{
    return pci_info_legacy(device, pci);
}

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

static void memory_numbers(const gpu_t *g, unsigned long long *total, unsigned long long *reserved,
                           unsigned long long *used, unsigned long long *free_)
{
    *total = g->mem_total_mib * MIB;
    *reserved = g->mem_reserved_mib * MIB;
    *used = g->mem_used_mib * MIB;
    if (*reserved > *total)
        *reserved = *total;
    if (*used > *total - *reserved)
        *used = *total - *reserved;
    *free_ = *total - *reserved - *used;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    unsigned long long total, reserved, used, free_;
    DEV_ENTER(device, memory != NULL);
    memory_numbers(device, &total, &reserved, &used, &free_);
    memory->total = total;
    memory->free = free_;
    memory->used = used + reserved; /* v1 "used" includes the reserved part */
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    unsigned long long total, reserved, used, free_;
    DEV_ENTER(device, memory != NULL);
    if (memory->version != NVML_MEMORY_V2_VERSION)
        return leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    memory_numbers(device, &total, &reserved, &used, &free_);
    memory->total = total;
    memory->reserved = reserved;
    memory->free = free_;
    memory->used = used;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t *bar1Memory)
{
    DEV_ENTER(device, bar1Memory != NULL);
    bar1Memory->bar1Total = 131072ULL * MIB;
    bar1Memory->bar1Used = (device->mem_used_mib > 0 ? 5ULL : 1ULL) * MIB;
    bar1Memory->bar1Free = bar1Memory->bar1Total - bar1Memory->bar1Used;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Utilisation, temperature, power, fan, clocks                        */
/* ------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                  nvmlUtilization_t *utilization)
{
    live_t v;
    DEV_ENTER(device, utilization != NULL);
    v = live_values(device);
    utilization->gpu = v.util;
    utilization->memory = v.memutil;
    return leave(NVML_SUCCESS);
}

static nvmlReturn_t codec_util(nvmlDevice_t device, unsigned int *utilization,
                               unsigned int *samplingPeriodUs)
{
    DEV_ENTER(device, utilization != NULL && samplingPeriodUs != NULL);
    *utilization = 0;
    *samplingPeriodUs = 1000000;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    return codec_util(device, utilization, samplingPeriodUs);
}

EXPORT nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *utilization,
                                                    unsigned int *samplingPeriodUs)
{
    return codec_util(device, utilization, samplingPeriodUs);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType,
                                             unsigned int *temp)
{
    DEV_ENTER(device, temp != NULL && sensorType == NVML_TEMPERATURE_GPU);
    *temp = live_values(device).temp;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_v1_t *temperature)
{
    DEV_ENTER(device, temperature != NULL);
    if (temperature->version != NVML_TEMPERATURE_V1_VERSION)
        return leave(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    if (temperature->sensorType != NVML_TEMPERATURE_GPU)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    temperature->temperature = (int)live_values(device).temp;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, int thresholdType,
                                                      unsigned int *temp)
{
    DEV_ENTER(device, temp != NULL);
    switch (thresholdType) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: *temp = 92; break;
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: *temp = 89; break;
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: *temp = 95; break;
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: *temp = 87; break;
    default:
        if (thresholdType < 0 || thresholdType > 7)
            return leave(NVML_ERROR_INVALID_ARGUMENT);
        return leave(NVML_ERROR_NOT_SUPPORTED);
    }
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    DEV_ENTER(device, power != NULL);
    *power = live_values(device).power_mw;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    DEV_ENTER(device, limit != NULL);
    *limit = device->limit_mw;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit)
{
    return nvmlDeviceGetEnforcedPowerLimit(device, limit);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device,
                                                             unsigned int *defaultLimit)
{
    return nvmlDeviceGetEnforcedPowerLimit(device, defaultLimit);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device,
                                                                 unsigned int *minLimit,
                                                                 unsigned int *maxLimit)
{
    DEV_ENTER(device, minLimit != NULL && maxLimit != NULL);
    *minLimit = device->limit_mw < 200000 ? device->limit_mw : 200000;
    *maxLimit = device->limit_mw;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t device, unsigned int *speed)
{
    DEV_ENTER(device, speed != NULL);
    if (device->fan < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *speed = (unsigned int)device->fan;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed_v2(nvmlDevice_t device, unsigned int fan,
                                             unsigned int *speed)
{
    DEV_ENTER(device, speed != NULL);
    if (device->fan < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    if (fan != 0)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    *speed = (unsigned int)device->fan;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetNumFans(nvmlDevice_t device, unsigned int *numFans)
{
    DEV_ENTER(device, numFans != NULL);
    if (device->fan < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *numFans = 1;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, unsigned int *pState)
{
    DEV_ENTER(device, pState != NULL);
    *pState = device->pstate;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerState(nvmlDevice_t device, unsigned int *pState)
{
    return nvmlDeviceGetPerformanceState(device, pState);
}

static unsigned int max_clock(const gpu_t *g, int type)
{
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM: return g->max_clock_sm_mhz;
    case NVML_CLOCK_MEM: return g->max_clock_mem_mhz;
    case NVML_CLOCK_VIDEO: return 1965;
    default: return 0;
    }
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    DEV_ENTER(device, clock != NULL && type >= NVML_CLOCK_GRAPHICS && type <= NVML_CLOCK_VIDEO);
    *clock = max_clock(device, type);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock)
{
    int busy;
    DEV_ENTER(device, clock != NULL && type >= NVML_CLOCK_GRAPHICS && type <= NVML_CLOCK_VIDEO);
    busy = live_values(device).util > 0;
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM:
        *clock = device->clock_sm_mhz ? device->clock_sm_mhz
                                      : (busy ? device->max_clock_sm_mhz : 345);
        break;
    case NVML_CLOCK_MEM:
        *clock = device->clock_mem_mhz ? device->clock_mem_mhz : device->max_clock_mem_mhz;
        break;
    default:
        *clock = busy ? 1755 : 765;
        break;
    }
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Modes and misc                                                      */
/* ------------------------------------------------------------------ */

static nvmlReturn_t constant_uint(nvmlDevice_t device, unsigned int *out, unsigned int value)
{
    DEV_ENTER(device, out != NULL);
    *out = value;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, unsigned int *mode)
{
    DEV_ENTER(device, mode != NULL);
    *mode = device->persistence;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, unsigned int *isActive)
{
    return constant_uint(device, isActive, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, unsigned int *display)
{
    return constant_uint(device, display, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, unsigned int *mode)
{
    DEV_ENTER(device, mode != NULL);
    *mode = device->compute_mode;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    DEV_ENTER(device, isMigDevice != NULL);
    *isMigDevice = valid_mig_handle(device) ? 1u : 0u;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode,
                                         unsigned int *pendingMode)
{
    DEV_ENTER(device, currentMode != NULL && pendingMode != NULL);
    if (device->mig < 0 || valid_mig_handle(device))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *currentMode = (unsigned int)device->mig;
    *pendingMode = (unsigned int)device->mig;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    DEV_ENTER(device, count != NULL);
    if (device->mig < 0 || valid_mig_handle(device))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *count = 7;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                        nvmlDevice_t *migDevice)
{
    unsigned int i, k = 0;
    DEV_ENTER(device, migDevice != NULL);
    if (device->mig != 1 || valid_mig_handle(device))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    for (i = 0; i < g_state.nmigs; i++) {
        if (g_state.migs[i].parent != device->index)
            continue;
        if (k == index) {
            *migDevice = &g_state.migs[i];
            return leave(NVML_SUCCESS);
        }
        k++;
    }
    return leave(NVML_ERROR_NOT_FOUND);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
    DEV_ENTER(device, id != NULL);
    if (!valid_mig_handle(device))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *id = device->gi_id;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType,
                                                int counterType, unsigned long long *eccCounts)
{
    DEV_ENTER(device, eccCounts != NULL && (errorType == 0 || errorType == 1) &&
                          (counterType == 0 || counterType == 1));
    if (device->ecc_mode < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    if (counterType == 0)
        *eccCounts = errorType == 0 ? device->ecc_vol_corr : device->ecc_vol_unc;
    else
        *eccCounts = errorType == 0 ? device->ecc_agg_corr : device->ecc_agg_unc;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, unsigned int *current,
                                         unsigned int *pending)
{
    DEV_ENTER(device, current != NULL && pending != NULL);
    if (device->ecc_mode < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *current = (unsigned int)device->ecc_mode;
    *pending = (unsigned int)device->ecc_mode;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrRows,
                                              unsigned int *uncRows, unsigned int *isPending,
                                              unsigned int *failureOccurred)
{
    DEV_ENTER(device, corrRows != NULL && uncRows != NULL && isPending != NULL &&
                          failureOccurred != NULL);
    if (device->remap < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *corrRows = device->remap_corr;
    *uncRows = device->remap_unc;
    *isPending = device->remap_pending;
    *failureOccurred = device->remap_failure;
    return leave(NVML_SUCCESS);
}

static nvmlReturn_t clock_reasons(nvmlDevice_t device, unsigned long long *reasons)
{
    DEV_ENTER(device, reasons != NULL);
    *reasons = device->throttle ? device->throttle : (live_values(device).util > 0 ? 0ULL : 1ULL);
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device,
                                                           unsigned long long *reasons)
{
    return clock_reasons(device, reasons);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device,
                                                              unsigned long long *reasons)
{
    return clock_reasons(device, reasons);
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                        unsigned long long *energy)
{
    DEV_ENTER(device, energy != NULL);
    if (device->energy_mj < 0)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *energy = (unsigned long long)device->energy_mj;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                             unsigned int *isActive)
{
    DEV_ENTER(device, isActive != NULL);
    if (link >= NVLINK_MAX_LINKS)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    if (link >= device->nvlinks)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    *isActive = (device->nvlink_down >> link) & 1u ? 0u : 1u;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Event sets: XID critical errors from [xid] sections, each delivered */
/* once to every event set, in file order.                              */
/* ------------------------------------------------------------------ */

#define NVML_EVENT_TYPE_XID 0x8ULL

typedef struct {
    int used;
    unsigned long long registered[MAX_GPUS]; /* event mask per GPU index */
    unsigned int delivered;                  /* [xid] entries already seen */
} event_set_t;

typedef event_set_t *nvmlEventSet_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

static event_set_t g_sets[MAX_EVENT_SETS];

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    unsigned int i;
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!set)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    for (i = 0; i < MAX_EVENT_SETS; i++) {
        if (!g_sets[i].used) {
            memset(&g_sets[i], 0, sizeof(g_sets[i]));
            g_sets[i].used = 1;
            /* XIDs already in the file happened before this set existed */
            g_sets[i].delivered = g_state.nxids;
            *set = &g_sets[i];
            return leave(NVML_SUCCESS);
        }
    }
    return leave(NVML_ERROR_INSUFFICIENT_RESOURCES);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    nvmlReturn_t rc = enter();
    if (rc != NVML_SUCCESS)
        return rc;
    if (!set || !set->used)
        return leave(NVML_ERROR_INVALID_ARGUMENT);
    set->used = 0;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device,
                                                     unsigned long long *types)
{
    DEV_ENTER(device, types != NULL);
    *types = NVML_EVENT_TYPE_XID;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types,
                                             nvmlEventSet_t set)
{
    DEV_ENTER(device, set != NULL && set->used);
    if (valid_mig_handle(device))
        return leave(NVML_ERROR_NOT_SUPPORTED);
    if (types & ~NVML_EVENT_TYPE_XID)
        return leave(NVML_ERROR_NOT_SUPPORTED);
    set->registered[device->index] |= types;
    return leave(NVML_SUCCESS);
}

/* Sleep until the data file's directory changes (inotify: costs nothing while
 * nothing happens, like a real driver's wait) or ms pass; without inotify, 10 ms. */
static void wait_for_change(int fd, int ms)
{
    struct pollfd pfd;
    char buf[4096];
    if (fd < 0) {
        struct timespec step = {0, 10 * 1000 * 1000};
        nanosleep(&step, NULL);
        return;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, ms) > 0) {
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
    }
}

static int watch_data_dir(void)
{
    const char *path = getenv("NOMADLAB_FAKE_NVML");
    char dir[4096];
    char *slash;
    int fd;
    if (!path || !*path)
        return -1;
    copy_str(dir, sizeof(dir), path);
    slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        copy_str(dir, sizeof(dir), ".");
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    if (inotify_add_watch(fd, dir, IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
                                       IN_ATTRIB) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Wait until an XID for a registered GPU shows up in the data file, or the timeout. */
EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data,
                                        unsigned int timeoutms)
{
    struct timespec start, now;
    int fd = watch_data_dir();
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        nvmlReturn_t rc = enter();
        if (rc != NVML_SUCCESS)
            return rc;
        if (!set || !set->used || !data)
            return leave(NVML_ERROR_INVALID_ARGUMENT);
        if (set->delivered > g_state.nxids) /* the file was rewritten shorter */
            set->delivered = g_state.nxids;
        while (set->delivered < g_state.nxids) {
            const xid_t *x = &g_state.xids[set->delivered++];
            if (x->gpu < g_state.ngpus && (set->registered[x->gpu] & NVML_EVENT_TYPE_XID)) {
                memset(data, 0, sizeof(*data));
                data->device = &g_state.gpus[x->gpu];
                data->eventType = NVML_EVENT_TYPE_XID;
                data->eventData = x->code;
                data->gpuInstanceId = NO_INSTANCE;
                data->computeInstanceId = NO_INSTANCE;
                if (fd >= 0)
                    close(fd);
                return leave(NVML_SUCCESS);
            }
        }
        pthread_mutex_unlock(&g_lock);
        {
            double waited;
            clock_gettime(CLOCK_MONOTONIC, &now);
            waited = (double)(now.tv_sec - start.tv_sec) * 1000.0 +
                     (double)(now.tv_nsec - start.tv_nsec) / 1e6;
            if (waited >= (double)timeoutms) {
                if (fd >= 0)
                    close(fd);
                return NVML_ERROR_TIMEOUT;
            }
            wait_for_change(fd, (int)((double)timeoutms - waited) + 1);
        }
    }
}

EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data,
                                     unsigned int timeoutms)
{
    return nvmlEventSetWait_v2(set, data, timeoutms);
}

EXPORT nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, int counter,
                                                unsigned int *value)
{
    DEV_ENTER(device, value != NULL && (counter == NVML_PCIE_UTIL_TX_BYTES ||
                                        counter == NVML_PCIE_UTIL_RX_BYTES));
    *value = 0;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device,
                                                        unsigned int *currLinkGen)
{
    DEV_ENTER(device, currLinkGen != NULL);
    *currLinkGen = device->pcie_gen;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device,
                                                       unsigned int *maxLinkGen)
{
    DEV_ENTER(device, maxLinkGen != NULL);
    *maxLinkGen = device->max_pcie_gen ? device->max_pcie_gen : device->pcie_gen;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device,
                                                   unsigned int *currLinkWidth)
{
    DEV_ENTER(device, currLinkWidth != NULL);
    *currLinkWidth = device->pcie_width;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int *maxLinkWidth)
{
    DEV_ENTER(device, maxLinkWidth != NULL);
    *maxLinkWidth = device->max_pcie_width ? device->max_pcie_width : device->pcie_width;
    return leave(NVML_SUCCESS);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/*
 * Two-call protocol: infos == NULL (or *infoCount too small) ->
 * INSUFFICIENT_SIZE with *infoCount = number of processes, or SUCCESS with
 * *infoCount = 0 when there are none; otherwise fill and set *infoCount.
 * kind: 1 = v1 struct, 2 = v2/v3 struct.  compute == 0: always empty.
 */
/* A MIG device lists the processes of its [mig] section; a GPU lists all of its own. */
static int proc_on(const proc_t *p, nvmlDevice_t device)
{
    if (valid_mig_handle(device))
        return p->mig >= 0 && MIG_INDEX_BASE + (unsigned int)p->mig == device->index;
    return p->gpu == device->index;
}

static nvmlReturn_t running_procs(nvmlDevice_t device, unsigned int *infoCount, void *infos,
                                  int kind, int compute)
{
    unsigned int i, n = 0, k = 0;
    DEV_ENTER(device, infoCount != NULL);
    if (compute) {
        for (i = 0; i < g_state.nprocs; i++)
            if (proc_on(&g_state.procs[i], device))
                n++;
    }
    if (n == 0) {
        *infoCount = 0;
        return leave(NVML_SUCCESS);
    }
    if (!infos || *infoCount < n) {
        *infoCount = n;
        return leave(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    for (i = 0; i < g_state.nprocs; i++) {
        const proc_t *p = &g_state.procs[i];
        if (!proc_on(p, device))
            continue;
        if (kind == 1) {
            nvmlProcessInfo_v1_t *out = (nvmlProcessInfo_v1_t *)infos + k;
            memset(out, 0, sizeof(*out));
            out->pid = p->pid;
            out->usedGpuMemory = p->mem_mib * MIB;
        } else {
            nvmlProcessInfo_v2_t *out = (nvmlProcessInfo_v2_t *)infos + k;
            memset(out, 0, sizeof(*out));
            out->pid = p->pid;
            out->usedGpuMemory = p->mem_mib * MIB;
            out->gpuInstanceId = NO_INSTANCE;
            out->computeInstanceId = NO_INSTANCE;
        }
        k++;
    }
    *infoCount = k;
    return leave(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                         unsigned int *infoCount,
                                                         nvmlProcessInfo_v1_t *infos)
{
    return running_procs(device, infoCount, infos, 1, 1);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                            unsigned int *infoCount,
                                                            nvmlProcessInfo_v2_t *infos)
{
    return running_procs(device, infoCount, infos, 2, 1);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                            unsigned int *infoCount,
                                                            nvmlProcessInfo_v2_t *infos)
{
    return running_procs(device, infoCount, infos, 2, 1);
}

EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device,
                                                          unsigned int *infoCount,
                                                          nvmlProcessInfo_v1_t *infos)
{
    return running_procs(device, infoCount, infos, 1, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_v2_t *infos)
{
    return running_procs(device, infoCount, infos, 2, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                             unsigned int *infoCount,
                                                             nvmlProcessInfo_v2_t *infos)
{
    return running_procs(device, infoCount, infos, 2, 0);
}

EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device,
                                                               unsigned int *infoCount,
                                                               nvmlProcessInfo_v2_t *infos)
{
    return running_procs(device, infoCount, infos, 2, 0);
}
