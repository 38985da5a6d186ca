/*
 * coreboot's hand-over to its Linux payload, emulated for the X220 e2e test
 * (qemu/x220-run). The payload is what Debian's cbfstool puts in the ROM:
 * `cbfstool add-payload` turns bzImage + initramfs + command line into a
 * SELF (the kernel, its zero page and command line, the initramfs, and
 * cbfstool's own Linux trampoline as the entry point). QEMU loads this stage
 * as a Multiboot kernel with that SELF as its module; the stage does what
 * coreboot's ramstage does after the hardware is up, and nothing more:
 *
 *  - native graphics init: puts the display into the linear framebuffer mode
 *    the coreboot table (placed in memory by the test with -device loader)
 *    describes, and fills in the framebuffer's address if the table left it 0
 *    (coreboot knows its BAR; the test does not);
 *  - the coreboot tables: the memory map (the BIOS's, with the table itself
 *    as CBMEM, LB_MEM_TABLE) added to the table, and the low table at 0x500
 *    forwarding to it, where cbfstool's trampoline looks;
 *  - the SELF loader: each segment copied to its address, then a jump to
 *    its entry, the trampoline. The trampoline, not this stage, builds the
 *    kernel's e820 map from the table and enters the kernel, leaving the
 *    zero page as cbfstool wrote it: no screen_info (Debian 12's cbfstool
 *    4.15 skips the framebuffer record), so the kernel can find the
 *    framebuffer only through the coreboot table, which the SSDT's BOOT0000
 *    device points to.
 *
 * Its log goes to the debug console (port 0xe9), like coreboot's CBMEM
 * console; the payload itself has no serial console.
 */
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#ifndef CB_ADDR
#error "build with -DCB_ADDR=<the coreboot table's address>"
#endif
#define CB_SIZE 0x1000

#define LOW_TABLE 0x500 /* coreboot's low table: a forward to CB_ADDR */

/* Multiboot (v1) header and entry. */
__asm__(
	".section .multiboot, \"a\"\n"
	".align 4\n"
	".long 0x1BADB002\n"
	".long 0x00000003\n" /* page-aligned modules, memory map */
	".long -(0x1BADB002 + 0x00000003)\n"
	".text\n"
	".globl _start\n"
	"_start:\n"
	"  cli\n"
	"  mov $stack + 16384, %esp\n"
	"  push %ebx\n"
	"  push %eax\n"
	"  call stage_main\n"
	"1: hlt\n"
	"  jmp 1b\n");

u8 stack[16384] __attribute__((aligned(16)));
void stage_main(u32 magic, void *mbi);

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u32 inl(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void puts(const char *s)
{
	while (*s)
		outb(0xe9, *s++);
}

static void puthex(u32 v)
{
	char b[11] = "0x";
	for (int i = 0; i < 8; i++)
		b[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 15];
	b[10] = 0;
	puts(b);
}

static void die(const char *why)
{
	puts("stage: ");
	puts(why);
	puts("\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void *memset(void *d, int c, u32 n)
{
	u8 *p = d;
	while (n--)
		*p++ = c;
	return d;
}

static void *memcpy(void *d, const void *s, u32 n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

struct mb_info {
	u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	u32 syms[4];
	u32 mmap_length, mmap_addr;
};
struct mb_mod {
	u32 start, end, string, reserved;
};
struct mb_mmap {
	u32 size;
	u64 addr, len;
	u32 type;
} __attribute__((packed));

struct lb_header {
	char signature[4];
	u32 header_bytes, header_checksum, table_bytes, table_checksum, table_entries;
};
struct lb_record {
	u32 tag, size;
};
struct lb_framebuffer {
	u32 tag, size;
	u64 physical_address;
	u32 x_resolution, y_resolution, bytes_per_line;
	u8 bits_per_pixel, red_mask_pos, red_mask_size, green_mask_pos, green_mask_size;
	u8 blue_mask_pos, blue_mask_size, reserved_mask_pos, reserved_mask_size;
} __attribute__((packed));

/* coreboot's IP checksum over the table. */
static u16 ipchksum(const void *data, u32 len)
{
	const u8 *p = data;
	u32 sum = 0;
	for (u32 i = 0; i < len; i++)
		sum += (i & 1) ? (u32)p[i] << 8 : p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

static u32 pci_read(u32 bus, u32 dev, u32 fn, u32 reg)
{
	outl(0xcf8, 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	return inl(0xcfc);
}

/* Bochs VBE (QEMU's standard VGA): a linear framebuffer mode. */
static void vbe_write(u16 index, u16 value)
{
	outw(0x1ce, index);
	outw(0x1cf, value);
}

static void graphics_init(struct lb_header *h)
{
	u8 *rec = (u8 *)h + h->header_bytes;
	struct lb_framebuffer *fb = 0;
	for (u32 i = 0; i < h->table_entries; i++) {
		struct lb_record *r = (struct lb_record *)rec;
		if (r->tag == 0x12)
			fb = (struct lb_framebuffer *)r;
		rec += r->size;
	}
	if (!fb)
		die("the coreboot table has no framebuffer record");
	/* The display: class 0x0300, QEMU's standard VGA (1234:1111). */
	u32 bar = 0;
	for (u32 dev = 0; dev < 32 && !bar; dev++) {
		u32 id = pci_read(0, dev, 0, 0);
		if (id == 0x11111234 && (pci_read(0, dev, 0, 8) >> 16) == 0x0300)
			bar = pci_read(0, dev, 0, 0x10) & ~0xfu;
	}
	if (!bar)
		die("no standard VGA on bus 0 (run QEMU with -vga std)");
	if (fb->physical_address == 0) {
		fb->physical_address = bar;
		h->table_checksum = ipchksum((u8 *)h + h->header_bytes, h->table_bytes);
		h->header_checksum = 0;
		h->header_checksum = ipchksum(h, sizeof(*h));
	} else if (fb->physical_address != bar) {
		die("the table's framebuffer address is not the VGA's BAR");
	}
	vbe_write(4, 0); /* disable */
	vbe_write(1, fb->x_resolution);
	vbe_write(2, fb->y_resolution);
	vbe_write(3, fb->bits_per_pixel);
	vbe_write(4, 0x41); /* enabled, linear framebuffer */
	/* A black screen, as coreboot leaves it. */
	memset((void *)bar, 0, fb->bytes_per_line * fb->y_resolution);
	puts("stage: framebuffer ");
	puthex(fb->x_resolution);
	puts("x");
	puthex(fb->y_resolution);
	puts(" at ");
	puthex(bar);
	puts("\n");
}

/* The table's records end at header_bytes + table_bytes: append one and
 * recompute both checksums. */
static void *lb_append(struct lb_header *h, u32 tag, u32 size)
{
	struct lb_record *r = (struct lb_record *)((u8 *)h + h->header_bytes + h->table_bytes);
	if (h->header_bytes + h->table_bytes + size > CB_SIZE)
		die("the coreboot table is full");
	memset(r, 0, size);
	r->tag = tag;
	r->size = size;
	h->table_bytes += size;
	h->table_entries++;
	return r;
}

static void lb_seal(struct lb_header *h)
{
	h->table_checksum = ipchksum((u8 *)h + h->header_bytes, h->table_bytes);
	h->header_checksum = 0;
	h->header_checksum = ipchksum(h, sizeof(*h));
}

struct lb_memory_range {
	u32 start_lo, start_hi, size_lo, size_hi, type;
};

static struct lb_memory_range *mem_add(struct lb_memory_range *m, u64 start, u64 end, u32 type)
{
	if (end <= start)
		return m;
	m->start_lo = start;
	m->start_hi = start >> 32;
	m->size_lo = end - start;
	m->size_hi = (end - start) >> 32;
	m->type = type;
	return m + 1;
}

/* LB_TAG_MEMORY: the BIOS's map, the table's own 4 KiB carved out as
 * LB_MEM_TABLE (16), as coreboot tags CBMEM. */
static void lb_memory(struct lb_header *h, struct mb_info *mbi)
{
	struct lb_memory_range buf[40], *m = buf;
	const u64 cb = CB_ADDR, cbend = CB_ADDR + CB_SIZE;
	for (u32 off = 0; off < mbi->mmap_length && m < buf + 36;) {
		struct mb_mmap *e = (struct mb_mmap *)(mbi->mmap_addr + off);
		u64 s = e->addr, end = e->addr + e->len;
		if (e->type == 1 && s <= cb && cbend <= end) {
			m = mem_add(m, s, cb, 1);
			m = mem_add(m, cb, cbend, 16);
			m = mem_add(m, cbend, end, 1);
		} else {
			m = mem_add(m, s, end, e->type);
		}
		off += e->size + 4;
	}
	u32 n = m - buf;
	u8 *r = lb_append(h, 0x01, 8 + n * sizeof(*buf));
	memcpy(r + 8, buf, n * sizeof(*buf));
}

/* The low table (coreboot writes it at 0x500): one LB_TAG_FORWARD record
 * with the address of the table in CBMEM. */
static void low_table(void)
{
	struct lb_header *h = (struct lb_header *)LOW_TABLE;
	memset(h, 0, sizeof(*h) + 16);
	memcpy(h->signature, "LBIO", 4);
	h->header_bytes = sizeof(*h);
	u32 *fwd = lb_append(h, 0x11, 16);
	fwd[2] = CB_ADDR;
	fwd[3] = 0;
	lb_seal(h);
}

static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }

/* A SELF payload (cbfs_payload_segment: big-endian type, compression,
 * offset, 64-bit load address, length, memory length). */
static u32 self_load(const u8 *self, u32 len)
{
	for (const u8 *seg = self; seg + 28 <= self + len; seg += 28) {
		u32 type = be32(seg), comp = be32(seg + 4), off = be32(seg + 8);
		u32 load = be32(seg + 16), n = be32(seg + 20), memlen = be32(seg + 24);
		if (be32(seg + 12) != 0)
			die("a SELF segment above 4 GiB");
		if (type == 0x454e5452) { /* ENTR */
			puts("stage: jumping to the payload's entry ");
			puthex(load);
			puts("\n");
			return load;
		}
		if (type != 0x434f4445 && type != 0x44415441) /* CODE, DATA */
			die("a SELF segment of an unknown type");
		if (comp != 0)
			die("a compressed SELF segment (add the payload without -c)");
		if (off + n > len || n > memlen)
			die("a SELF segment out of bounds");
		puts("stage: segment ");
		puthex(load);
		puts(" + ");
		puthex(memlen);
		puts("\n");
		memcpy((void *)load, self + off, n);
		memset((u8 *)load + n, 0, memlen - n);
	}
	die("no entry in the SELF payload");
	return 0;
}

void stage_main(u32 magic, void *info)
{
	struct mb_info *mbi = info;
	puts("stage: coreboot hand-over emulation\n");
	if (magic != 0x2BADB002)
		die("not started by a Multiboot loader");
	if (!(mbi->flags & (1 << 3)) || mbi->mods_count != 1)
		die("want one module: the SELF payload (cbfstool add-payload)");
	if (!(mbi->flags & (1 << 6)))
		die("no memory map");
	struct mb_mod *mod = (struct mb_mod *)mbi->mods_addr;

	struct lb_header *h = (struct lb_header *)CB_ADDR;
	if (h->signature[0] != 'L' || h->signature[1] != 'B' || h->signature[2] != 'I' || h->signature[3] != 'O')
		die("no coreboot table (LBIO) at CB_ADDR");
	if (ipchksum(h, sizeof(*h)) != 0 || ipchksum((u8 *)h + h->header_bytes, h->table_bytes) != h->table_checksum)
		die("bad coreboot table checksum");
	graphics_init(h);
	lb_memory(h, mbi);
	lb_seal(h);
	low_table();

	u32 entry = self_load((const u8 *)mod->start, mod->end - mod->start);
	((void (*)(void *))entry)(h);
	die("returned from the payload");
}
