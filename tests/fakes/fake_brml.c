/*
 * fake_brml.c: a stand-in for Biren's libbiren-ml.so.1 (BRML) with exactly the entry points
 * vigil-attester's BRML collector calls. Written for Vigil's tests; no Biren code.
 *
 * Shape of the answers: BirenTechnology/go-brml (Apache-2.0) publishes brml.h and an example
 * program but no sample outputs; the fake follows brml.h's signatures, return codes, buffer
 * sizes and brmlGPUInfo_t (name, id, serial, board_id, 96 bytes each), and answers for one
 * BR104-class board with illustrative values and one version per brmlGPUFirmwareType_t (CP,
 * SDMA, ENCODE, DECODE, HBM, FLASH, MPU, PMU).
 *
 * Environment:
 *   FAKE_BRML_DEVICES=N        devices reported (default 1)
 *   FAKE_BRML_FAIL_DEVICE=I    device I fails brmlDeviceGetGpuInfo
 *   FAKE_BRML_FW_<TYPE>=TEXT   firmware <TYPE> (CP, ..., PMU) has version TEXT
 *   FAKE_BRML_LONG_STRINGS=1   the UUID fills the caller's buffer with no terminator
 *   FAKE_BRML_INIT_FAIL=1      brmlInit fails
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUCCESS 0u
#define ERROR_UNINITIALIZED 1u
#define ERROR_INVALID_ARGUMENT 2u
#define ERROR_NOT_SUPPORTED 3u
#define ERROR_UNKNOWN 0xFFu

typedef struct { char name[96], id[96], serial[96], board_id[96]; } gpu_info_t;

static const char *FIRMWARE[] = {"", "CP", "SDMA", "ENCODE", "DECODE", "HBM", "FLASH", "MPU", "PMU"};
static const char *VERSIONS[] = {"", "1.12.3", "1.4.0", "2.0.7", "2.0.7", "0.9.2", "3.2.1.15", "1.1.8", "1.0.26"};

static long env_long(const char *name, long fallback) {
    const char *text = getenv(name);
    return text && *text ? strtol(text, NULL, 0) : fallback;
}
static int devices(void) { return (int)env_long("FAKE_BRML_DEVICES", 1); }
static int initialised;
static int device_of(void *handle) {
    long index = (long)(uintptr_t)handle - 0x100;
    return index >= 0 && index < devices() ? (int)index : -1;
}

unsigned int brmlInit(void) {
    if (env_long("FAKE_BRML_INIT_FAIL", 0)) return ERROR_UNKNOWN;
    initialised = 1;
    return SUCCESS;
}
unsigned int brmlShutdown(void) { initialised = 0; return SUCCESS; }
const char *brmlErrorString(unsigned int result) {
    switch (result) {
    case SUCCESS: return "Success";
    case ERROR_UNINITIALIZED: return "Uninitialized";
    case ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case ERROR_NOT_SUPPORTED: return "Not Supported";
    default: return "Unknown Error";
    }
}
unsigned int brmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialised) return ERROR_UNINITIALIZED;
    if (!version || length < 16) return ERROR_INVALID_ARGUMENT;
    snprintf(version, length, "1.5.0");
    return SUCCESS;
}
unsigned int brmlDeviceGetCount(unsigned int *count) {
    if (!initialised) return ERROR_UNINITIALIZED;
    if (!count) return ERROR_INVALID_ARGUMENT;
    *count = (unsigned int)devices();
    return SUCCESS;
}
unsigned int brmlDeviceGetHandleByIndex(unsigned int index, void **device) {
    if (!initialised) return ERROR_UNINITIALIZED;
    if (!device || index >= (unsigned int)devices()) return ERROR_INVALID_ARGUMENT;
    *device = (void *)(uintptr_t)(0x100 + index);
    return SUCCESS;
}
unsigned int brmlDeviceGetUUID(void *device, char *uuid, unsigned int length) {
    int index = device_of(device);
    if (index < 0 || !uuid || length < 80) return ERROR_INVALID_ARGUMENT;
    if (env_long("FAKE_BRML_LONG_STRINGS", 0))
        memset(uuid, 'U', length);
    else
        snprintf(uuid, length, "GPU-5f2c9a10-4b3e-11ee-9d0a-%012d", index);
    return SUCCESS;
}
unsigned int brmlDeviceGetGpuInfo(void *device, gpu_info_t *info) {
    int index = device_of(device);
    if (index < 0 || !info) return ERROR_INVALID_ARGUMENT;
    if (env_long("FAKE_BRML_FAIL_DEVICE", -1) == index) return ERROR_UNKNOWN;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "Biren BR104");
    snprintf(info->id, sizeof info->id, "BR104-%d", index);
    snprintf(info->serial, sizeof info->serial, "BR1042307%05d", index);
    snprintf(info->board_id, sizeof info->board_id, "0x%04x", 0x1040 + index);
    return SUCCESS;
}
unsigned int brmlDeviceGetBoardPartNumber(void *device, char *part, unsigned int length) {
    if (device_of(device) < 0 || !part || length < 80) return ERROR_INVALID_ARGUMENT;
    snprintf(part, length, "BR104-P-64G-A1");
    return SUCCESS;
}
unsigned int brmlDeviceGetFirmwareVersion(void *device, unsigned int type, char *version, int length) {
    if (device_of(device) < 0 || !version || length < 80) return ERROR_INVALID_ARGUMENT;
    if (type < 1 || type > 8) return ERROR_NOT_SUPPORTED;
    char variable[64];
    snprintf(variable, sizeof variable, "FAKE_BRML_FW_%s", FIRMWARE[type]);
    const char *text = getenv(variable) ? getenv(variable) : VERSIONS[type];
    snprintf(version, (size_t)length, "%s", text);
    return SUCCESS;
}
