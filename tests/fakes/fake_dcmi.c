/*
 * fake_dcmi.c: a stand-in for Huawei's libdcmi.so with exactly the entry points
 * vigil-attester's DCMI collector calls. Written for Vigil's tests; no Huawei code.
 *
 * Shape of the answers: an Atlas 800T A2 server with Ascend 910B3 NPUs, one NPU per card, as
 * the DCMI API reference's descriptions and `npu-smi info` present them (chip type "Ascend",
 * chip name "910B3", chip version "V1"; electronic label with product name, model,
 * manufacturer and serial number; firmware components from enum dcmi_component_type with
 * version strings). Signatures and structs follow the DCMI API reference
 * (dcmi_interface_api.h). Values are illustrative.
 *
 * Attestation (FAKE_DCMI_ATTEST_DIR): dcmiv2_get_attest_cert returns DIR/iak.pem, or
 * DIR/iak.der; dcmiv2_get_attest_evidence returns the records vigil-attester's dcmi.rs
 * documents as its (assumed, unpublished) evidence layout, built from DIR/quote.bin (type 1),
 * DIR/signature.bin (2), DIR/pcrs.bin (3: little-endian u32 index + 32-byte value, repeated),
 * DIR/boot.log (4, optional) and DIR/ima.log (5, optional). Each record is read first from
 * the NPU's own file, named with its logic id (DIR/quote-<logic id>.bin,
 * DIR/signature-<logic id>.bin, DIR/pcrs-<logic id>.bin, DIR/boot-<logic id>.log,
 * DIR/ima-<logic id>.log), and from the shared name above when that is absent, so a test can
 * give every NPU a quote over its own challenge. The fake cannot sign: it copies
 * bytes, and writes the challenge it received to DIR/challenge-<logic id>.bin (and
 * DIR/challenge.bin). The challenge is a pure function of the verifier's nonce and the
 * device index (SHA-256("vigil-npu-v1" || nonce || u32 BE index)), so a test computes it
 * first, writes a quote over it into DIR, runs the attester with that nonce, and then checks
 * challenge-*.bin against its own value.
 *
 * Environment:
 *   FAKE_DCMI_NPUS=N               cards reported, one NPU each (default 8); any N, IDs only
 *                                  up to the caller's list
 *   FAKE_DCMI_DEVICES_PER_CARD=N   NPUs per card (default 1)
 *   FAKE_DCMI_FAIL_DEVICE=C        card C's chip info and electronic label fail
 *   FAKE_DCMI_FW_<NAME>=TEXT       component <NAME> (e.g. UEFI) has version TEXT
 *   FAKE_DCMI_COMPONENTS=N         component count reported (default 4)
 *   FAKE_DCMI_LONG_STRINGS=1       serial number and driver version fill their buffers with no
 *                                  terminator
 *   FAKE_DCMI_ATTEST_DIR=DIR       NPUs attest, with the files above
 *   FAKE_DCMI_EVIDENCE_OVERSIZED=1 the evidence length reported exceeds the caller's buffer
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK 0
#define ERR_INVALID (-8001)
#define ERR_NOT_EXIST (-8008)
#define ERR_NOT_SUPPORT (-8255)
#define CHIP 32
#define LABEL 256

struct dcmi_chip_info { unsigned char chip_type[CHIP], chip_name[CHIP], chip_ver[CHIP]; unsigned int aicore_cnt; };
struct dcmi_elabel_info { char product_name[LABEL], model[LABEL], manufacturer[LABEL], manufacturer_date[LABEL], serial_number[LABEL]; };
struct attest_ctx { unsigned int challenge_len; unsigned int evidence_type; char challenge[32]; };

static const struct { unsigned int id; const char *name; const char *version; } COMPONENTS[] = {
    {1, "XLOADER", "7.1.0.5.220"}, {3, "UEFI", "7.1.0.5.220"}, {4, "TEE", "7.1.0.5.220"},
    {30, "ATF", "7.1.0.5.220"},
};
#define COMPONENT_COUNT (sizeof(COMPONENTS) / sizeof(COMPONENTS[0]))

static long env_long(const char *name, long fallback) {
    const char *text = getenv(name);
    return text && *text ? strtol(text, NULL, 0) : fallback;
}
static int cards(void) { return (int)env_long("FAKE_DCMI_NPUS", 8); }
static int per_card(void) { return (int)env_long("FAKE_DCMI_DEVICES_PER_CARD", 1); }
static int valid(int card, int device) {
    return card >= 0 && card < cards() && device >= 0 && device < per_card();
}
static int long_strings(void) { return env_long("FAKE_DCMI_LONG_STRINGS", 0) != 0; }

int dcmi_init(void) { return OK; }
int dcmiv2_init(void) { return OK; }
int dcmi_get_card_list(int *card_num, int *card_list, int list_len) {
    if (!card_num || !card_list || list_len < 0) return ERR_INVALID;
    for (int i = 0; i < cards() && i < list_len; i++) card_list[i] = i;
    *card_num = cards();
    return OK;
}
int dcmi_get_device_num_in_card(int card, int *device_num) {
    if (!device_num || card < 0 || card >= cards()) return ERR_NOT_EXIST;
    *device_num = per_card();
    return OK;
}
int dcmi_get_driver_version(char *version, unsigned int len) {
    if (!version || len == 0) return ERR_INVALID;
    if (long_strings())
        memset(version, '7', len);
    else
        snprintf(version, len, "24.1.rc2");
    return OK;
}
int dcmi_get_device_chip_info(int card, int device, struct dcmi_chip_info *info) {
    if (!info || !valid(card, device)) return ERR_NOT_EXIST;
    if (env_long("FAKE_DCMI_FAIL_DEVICE", -1) == card) return ERR_NOT_SUPPORT;
    memset(info, 0, sizeof *info);
    snprintf((char *)info->chip_type, CHIP, "Ascend");
    snprintf((char *)info->chip_name, CHIP, "910B3");
    snprintf((char *)info->chip_ver, CHIP, "V1");
    info->aicore_cnt = 20;
    return OK;
}
int dcmi_get_device_elabel_info(int card, int device, struct dcmi_elabel_info *info) {
    if (!info || !valid(card, device)) return ERR_NOT_EXIST;
    if (env_long("FAKE_DCMI_FAIL_DEVICE", -1) == card) return ERR_NOT_SUPPORT;
    memset(info, 0, sizeof *info);
    snprintf(info->product_name, LABEL, "Atlas 800T A2");
    snprintf(info->model, LABEL, "IT21PMBB");
    snprintf(info->manufacturer, LABEL, "Huawei");
    snprintf(info->manufacturer_date, LABEL, "2024/03/18");
    if (long_strings())
        memset(info->serial_number, 'S', LABEL);
    else
        snprintf(info->serial_number, LABEL, "102A4K10%04d", card);
    return OK;
}
int dcmi_get_device_component_count(int card, int device, unsigned int *count) {
    if (!count || !valid(card, device)) return ERR_NOT_EXIST;
    *count = (unsigned int)env_long("FAKE_DCMI_COMPONENTS", (long)COMPONENT_COUNT);
    return OK;
}
int dcmi_get_device_component_list(int card, int device, unsigned int *table, unsigned int count) {
    if (!table || !valid(card, device)) return ERR_NOT_EXIST;
    for (unsigned int i = 0; i < count; i++) table[i] = i < COMPONENT_COUNT ? COMPONENTS[i].id : i % 33;
    return OK;
}
int dcmi_get_device_component_static_version(int card, int device, unsigned int component,
                                             unsigned char *version, unsigned int len) {
    if (!version || len == 0 || !valid(card, device)) return ERR_NOT_EXIST;
    const char *text = "7.1.0.5.220";
    char variable[64];
    for (unsigned int i = 0; i < COMPONENT_COUNT; i++)
        if (COMPONENTS[i].id == component) {
            snprintf(variable, sizeof variable, "FAKE_DCMI_FW_%s", COMPONENTS[i].name);
            if (getenv(variable)) text = getenv(variable);
        }
    snprintf((char *)version, len, "%s", text);
    return OK;
}
int dcmi_get_device_logic_id(int *logic, int card, int device) {
    if (!logic || !valid(card, device)) return ERR_NOT_EXIST;
    *logic = card * per_card() + device;
    return OK;
}

/* Reads DIR/name; returns its size, -1 if absent, or -2 if over `room`. */
static long read_file(const char *name, unsigned char *out, unsigned long room) {
    const char *dir = getenv("FAKE_DCMI_ATTEST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "rb");
    if (!file) return -1;
    unsigned long size = 0;
    int c;
    while ((c = fgetc(file)) != EOF) {
        if (size >= room) { fclose(file); return -2; }
        out[size++] = (unsigned char)c;
    }
    fclose(file);
    return (long)size;
}

int dcmiv2_get_attest_cert(int logic, unsigned char *cert, unsigned int *cert_len) {
    if (!cert || !cert_len || logic < 0 || logic >= cards() * per_card()) return ERR_INVALID;
    if (!getenv("FAKE_DCMI_ATTEST_DIR")) return ERR_NOT_SUPPORT;
    long size = read_file("iak.pem", cert, *cert_len);
    if (size < 0) size = read_file("iak.der", cert, *cert_len);
    if (size < 0) return ERR_NOT_EXIST;
    *cert_len = (unsigned int)size;
    return OK;
}

/* Appends record `type` from DIR/<stem>-<logic>.<ext> (this NPU's own file) or, when that is
 * absent, DIR/<stem>.<ext> (shared by every NPU). */
static int append(unsigned char *out, unsigned long room, unsigned long *at, unsigned int type,
                  int logic, const char *stem, const char *ext, int required) {
    if (*at + 8 > room) return ERR_INVALID;
    char name[256];
    snprintf(name, sizeof name, "%s-%d.%s", stem, logic, ext);
    long size = read_file(name, out + *at + 8, room - *at - 8);
    if (size == -1) {
        snprintf(name, sizeof name, "%s.%s", stem, ext);
        size = read_file(name, out + *at + 8, room - *at - 8);
    }
    if (size < 0) return required ? ERR_NOT_EXIST : OK;
    uint32_t header[2] = {type, (uint32_t)size}; /* little-endian hosts */
    memcpy(out + *at, header, 8);
    *at += 8 + (unsigned long)size;
    return OK;
}

int dcmiv2_get_attest_evidence(int logic, struct attest_ctx *ctx, unsigned char *evidence,
                               unsigned int *evidence_len) {
    if (!ctx || !evidence || !evidence_len || logic < 0 || logic >= cards() * per_card())
        return ERR_INVALID;
    const char *dir = getenv("FAKE_DCMI_ATTEST_DIR");
    if (!dir) return ERR_NOT_SUPPORT;
    if (ctx->challenge_len != 32 || ctx->evidence_type != 7) return ERR_INVALID;
    char path[4096];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            snprintf(path, sizeof path, "%s/challenge-%d.bin", dir, logic);
        else
            snprintf(path, sizeof path, "%s/challenge.bin", dir);
        FILE *file = fopen(path, "wb");
        if (!file) return ERR_INVALID;
        fwrite(ctx->challenge, 1, 32, file);
        fclose(file);
    }
    unsigned long at = 0, room = *evidence_len;
    int rc;
    if ((rc = append(evidence, room, &at, 1, logic, "quote", "bin", 1)) != OK) return rc;
    if ((rc = append(evidence, room, &at, 2, logic, "signature", "bin", 1)) != OK) return rc;
    if ((rc = append(evidence, room, &at, 3, logic, "pcrs", "bin", 1)) != OK) return rc;
    if ((rc = append(evidence, room, &at, 4, logic, "boot", "log", 0)) != OK) return rc;
    if ((rc = append(evidence, room, &at, 5, logic, "ima", "log", 0)) != OK) return rc;
    *evidence_len = env_long("FAKE_DCMI_EVIDENCE_OVERSIZED", 0) ? *evidence_len + 4096u
                                                                : (unsigned int)at;
    return OK;
}
