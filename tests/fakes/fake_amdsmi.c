/*
 * fake_amdsmi.c: a stand-in for AMD's libamd_smi.so (amdsmi library major version 26,
 * ROCm 7.x) with exactly the entry points vigil-attester's amdsmi collector calls. Written
 * for Vigil's tests; no AMD code.
 *
 * Shape of the answers: MI300X-class GPUs as `amd-smi static` and `amd-smi firmware` print
 * them (the `amd-smi static` sample in ROCm amdsmi's docs/how-to/using-AMD-SMI-CLI-tool.md:
 * market name, ASIC serial as 0x-prefixed hex, board product name "... [Instinct MI300X]",
 * driver "amdgpu"; the firmware ids an MI300X lists: CP_MEC1/2, RLC, SDMA0/1, VCN, the RLC
 * restore lists, PSP_SOSDRV, ASD, TA_RAS, TA_XGMI, PM, PLDM_BUNDLE). Version numbers are
 * illustrative values in the encodings amd-smi decodes, not copied from a real board.
 * Struct layouts are those of amdsmi.h for major version 26.
 *
 * Environment:
 *   FAKE_AMDSMI_DEVICES=N          GPUs reported (default 8); any N, handles only up to the
 *                                  caller's array
 *   FAKE_AMDSMI_FAIL_DEVICE=I      GPU I fails its UUID and ASIC queries
 *   FAKE_AMDSMI_FW_<NAME>=V        firmware <NAME> (e.g. PSP_SOSDRV) has raw version V
 *                                  (decimal or 0x hex)
 *   FAKE_AMDSMI_FW_COUNT=N         num_fw_info reported (0..255; default: the real list);
 *                                  entries past the list are filled up to the array's 80
 *   FAKE_AMDSMI_LONG_STRINGS=1     market name and driver version fill their 256-byte
 *                                  fields with no terminator
 *   FAKE_AMDSMI_VERSION_MAJOR=N    library major version reported (default 26)
 *   FAKE_AMDSMI_INIT_FAIL=1        amdsmi_init fails
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR 256
#define FW_MAX 80
#define ST_SUCCESS 0u
#define ST_INVAL 1u
#define ST_NOT_SUPPORTED 2u
#define ST_INIT_ERROR 18u

typedef struct { uint32_t major, minor, release; const char *build; } version_t;
typedef struct {
    char name[STR], build_date[STR], part_number[STR], version[STR], boot_firmware[STR];
    uint64_t reserved[36];
} vbios_t;
typedef struct {
    char market_name[STR];
    uint32_t vendor_id;
    char vendor_name[STR];
    uint32_t subvendor_id;
    uint64_t device_id;
    uint32_t rev_id;
    char asic_serial[STR];
    uint32_t oam_id, num_of_compute_units;
    uint64_t target_graphics_version;
    uint32_t subsystem_id, reserved[21];
} asic_t;
typedef struct {
    char model_number[STR], product_serial[STR], fru_id[STR], product_name[STR],
        manufacturer_name[STR];
    uint64_t reserved[64];
} board_t;
typedef struct { char driver_version[STR], driver_date[STR], driver_name[STR]; } driver_t;
typedef struct {
    uint8_t num_fw_info;
    struct { uint32_t fw_id; uint64_t fw_version; uint64_t reserved[2]; } list[FW_MAX];
    uint32_t reserved[7];
} fw_t;

static const struct { uint32_t id; const char *name; uint64_t version; } FIRMWARE[] = {
    {7, "CP_MEC1", 177}, {8, "CP_MEC2", 177}, {9, "RLC", 17}, {10, "SDMA0", 20},
    {11, "SDMA1", 20}, {18, "VCN", 0x0111000e}, {24, "RLC_RESTORE_LIST_GPM_MEM", 3},
    {25, "RLC_RESTORE_LIST_SRM_MEM", 1}, {26, "RLC_RESTORE_LIST_CNTL", 1},
    {30, "PSP_SOSDRV", 0x00360259}, {72, "ASD", 553648344}, {73, "TA_RAS", 0x1b000501},
    {74, "TA_XGMI", 0x20000010}, {77, "PM", 0x00556400}, {79, "PLDM_BUNDLE", 0x01060302},
};
#define FIRMWARE_COUNT (sizeof(FIRMWARE) / sizeof(FIRMWARE[0]))

static long env_long(const char *name, long fallback) {
    const char *text = getenv(name);
    return text && *text ? strtol(text, NULL, 0) : fallback;
}
static int devices(void) { return (int)env_long("FAKE_AMDSMI_DEVICES", 8); }
static int gpu_of(void *handle) {
    long index = (long)(uintptr_t)handle - 1;
    return index >= 0 && index < devices() ? (int)index : -1;
}
static int failing(int gpu) { return env_long("FAKE_AMDSMI_FAIL_DEVICE", -1) == gpu; }
static int long_strings(void) { return env_long("FAKE_AMDSMI_LONG_STRINGS", 0) != 0; }
static void fill_unterminated(char *field) { memset(field, 'A', STR); }

uint32_t amdsmi_get_lib_version(version_t *v) {
    if (!v) return ST_INVAL;
    v->major = (uint32_t)env_long("FAKE_AMDSMI_VERSION_MAJOR", 26);
    v->minor = 1;
    v->release = 0;
    v->build = "fake";
    return ST_SUCCESS;
}
uint32_t amdsmi_init(uint64_t flags) {
    if (env_long("FAKE_AMDSMI_INIT_FAIL", 0)) return ST_INIT_ERROR;
    return (flags & 2u) ? ST_SUCCESS : ST_INVAL;
}
uint32_t amdsmi_shut_down(void) { return ST_SUCCESS; }
uint32_t amdsmi_status_code_to_string(uint32_t status, const char **text) {
    if (!text) return ST_INVAL;
    switch (status) {
    case ST_NOT_SUPPORTED: *text = "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported"; break;
    case ST_INIT_ERROR: *text = "AMDSMI_STATUS_INIT_ERROR - Initialization error"; break;
    default: *text = "AMDSMI_STATUS_INVAL - Invalid parameters"; break;
    }
    return ST_SUCCESS;
}
/* One socket holding every GPU. */
uint32_t amdsmi_get_socket_handles(uint32_t *count, void **handles) {
    if (!count) return ST_INVAL;
    if (handles && *count >= 1) handles[0] = (void *)0x5000;
    *count = 1;
    return ST_SUCCESS;
}
uint32_t amdsmi_get_processor_handles(void *socket, uint32_t *count, void **handles) {
    if (!count || socket != (void *)0x5000) return ST_INVAL;
    uint32_t total = (uint32_t)devices();
    if (handles)
        for (uint32_t i = 0; i < total && i < *count; i++) handles[i] = (void *)(uintptr_t)(i + 1);
    *count = total;
    return ST_SUCCESS;
}
uint32_t amdsmi_get_gpu_device_uuid(void *handle, unsigned int *length, char *uuid) {
    int gpu = gpu_of(handle);
    if (gpu < 0 || !length || !uuid || *length < 38) return ST_INVAL;
    if (failing(gpu)) return ST_NOT_SUPPORTED;
    snprintf(uuid, *length, "%02xff74a1-0000-1000-80%02x-7e20764e2714", gpu, gpu);
    *length = 37;
    return ST_SUCCESS;
}
uint32_t amdsmi_get_gpu_asic_info(void *handle, asic_t *info) {
    int gpu = gpu_of(handle);
    if (gpu < 0 || !info) return ST_INVAL;
    if (failing(gpu)) return ST_NOT_SUPPORTED;
    memset(info, 0, sizeof *info);
    if (long_strings())
        fill_unterminated(info->market_name);
    else
        snprintf(info->market_name, STR, "AMD Instinct MI300X");
    info->vendor_id = 0x1002;
    snprintf(info->vendor_name, STR, "Advanced Micro Devices Inc. [AMD/ATI]");
    info->subvendor_id = 0x1002;
    info->device_id = 0x74a1;
    snprintf(info->asic_serial, STR, "0x%016llX", 0x7E8F7E20764E2700ULL + (unsigned)gpu);
    info->oam_id = (uint32_t)gpu;
    info->num_of_compute_units = 304;
    return ST_SUCCESS;
}
uint32_t amdsmi_get_gpu_board_info(void *handle, board_t *info) {
    int gpu = gpu_of(handle);
    if (gpu < 0 || !info) return ST_INVAL;
    memset(info, 0, sizeof *info);
    snprintf(info->model_number, STR, "102-G30211-00");
    snprintf(info->product_serial, STR, "PCB0792%02d-0071", gpu);
    snprintf(info->fru_id, STR, "FRU-%d", gpu);
    snprintf(info->product_name, STR, "Aqua Vanjaram [Instinct MI300X]");
    snprintf(info->manufacturer_name, STR, "Advanced Micro Devices, Inc. [AMD/ATI]");
    return ST_SUCCESS;
}
uint32_t amdsmi_get_gpu_vbios_info(void *handle, vbios_t *info) {
    if (gpu_of(handle) < 0 || !info) return ST_INVAL;
    memset(info, 0, sizeof *info);
    snprintf(info->name, STR, "AMD MI300X_HW_SRIOV_CVS_1VF");
    snprintf(info->build_date, STR, "2024/06/12 19:02");
    snprintf(info->part_number, STR, "113-M3000100-102");
    snprintf(info->version, STR, "022.040.003.043.000001");
    return ST_SUCCESS;
}
uint32_t amdsmi_get_gpu_driver_info(void *handle, driver_t *info) {
    if (gpu_of(handle) < 0 || !info) return ST_INVAL;
    memset(info, 0, sizeof *info);
    if (long_strings())
        fill_unterminated(info->driver_version);
    else
        snprintf(info->driver_version, STR, "6.10.5");
    snprintf(info->driver_date, STR, "2015/01/01 00:00");
    snprintf(info->driver_name, STR, "amdgpu");
    return ST_SUCCESS;
}
uint32_t amdsmi_get_fw_info(void *handle, fw_t *info) {
    if (gpu_of(handle) < 0 || !info) return ST_INVAL;
    memset(info, 0, sizeof *info);
    for (unsigned i = 0; i < FW_MAX; i++) {
        if (i < FIRMWARE_COUNT) {
            char variable[64];
            snprintf(variable, sizeof variable, "FAKE_AMDSMI_FW_%s", FIRMWARE[i].name);
            info->list[i].fw_id = FIRMWARE[i].id;
            info->list[i].fw_version = (uint64_t)env_long(variable, (long)FIRMWARE[i].version);
        } else {
            info->list[i].fw_id = i; /* filler for oversized counts */
            info->list[i].fw_version = i;
        }
    }
    info->num_fw_info = (uint8_t)env_long("FAKE_AMDSMI_FW_COUNT", (long)FIRMWARE_COUNT);
    return ST_SUCCESS;
}
