/*
 * coreboot's hand-over to its Linux payload, emulated for the X220 e2e test
 * (qemu/x220-run). QEMU loads this as a Multiboot kernel, with the payload's
 * bzImage and initramfs as modules; it then does what coreboot's ramstage and
 * cbfstool's Linux trampoline do on the laptop, and nothing more:
 *
 *  - native graphics init: puts the display into the linear framebuffer mode
 *    the coreboot table (placed in memory by the test with -device loader)
 *    describes, and fills in the framebuffer's address if the table left it 0
 *    (coreboot knows its BAR; the test does not);
 *  - the memory map: the BIOS's e820 map with the coreboot table reserved, as
 *    CBMEM is;
 *  - a zero page with NO screen_info (orig_video_isVGA = 0): the kernel can
 *    find the framebuffer only through the coreboot table, which the SSDT's
 *    BOOT0000 device points to;
 *  - the 32-bit boot protocol: the protected-mode kernel at 1 MiB, flat
 *    segments 0x10/0x18, %esi = zero page, no real-mode setup code run.
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

#define ZERO_PAGE 0x90000
#define CMDLINE   0x98000
#define KERNEL_PM 0x100000

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

static u32 strlen(const char *s)
{
	u32 n = 0;
	while (s[n])
		n++;
	return n;
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

struct gdt_ptr {
	u16 limit;
	u32 base;
} __attribute__((packed));
static const u64 gdt[4] __attribute__((aligned(16))) = {
	0, 0,
	0x00cf9a000000ffffULL, /* 0x10: __BOOT_CS */
	0x00cf92000000ffffULL, /* 0x18: __BOOT_DS */
};

void stage_main(u32 magic, void *info)
{
	struct mb_info *mbi = info;
	puts("stage: coreboot hand-over emulation\n");
	if (magic != 0x2BADB002)
		die("not started by a Multiboot loader");
	if (!(mbi->flags & (1 << 3)) || mbi->mods_count < 2)
		die("want two modules: bzImage, initramfs");
	if (!(mbi->flags & (1 << 6)))
		die("no memory map");
	struct mb_mod *mods = (struct mb_mod *)mbi->mods_addr;
	u8 *bz = (u8 *)mods[0].start;
	u32 bzlen = mods[0].end - mods[0].start;

	struct lb_header *h = (struct lb_header *)CB_ADDR;
	if (h->signature[0] != 'L' || h->signature[1] != 'B' || h->signature[2] != 'I' || h->signature[3] != 'O')
		die("no coreboot table (LBIO) at CB_ADDR");
	if (ipchksum(h, sizeof(*h)) != 0 || ipchksum((u8 *)h + h->header_bytes, h->table_bytes) != h->table_checksum)
		die("bad coreboot table checksum");
	graphics_init(h);

	/* The bzImage's setup header (Documentation/x86/boot.rst). */
	if (bzlen < 0x1000 || *(u32 *)(bz + 0x202) != 0x53726448)
		die("module 1 is not a bzImage");
	u16 version = *(u16 *)(bz + 0x206);
	if (version < 0x20c)
		die("boot protocol too old");
	u32 setup_sects = bz[0x1f1] ? bz[0x1f1] : 4;
	u32 pm_off = (setup_sects + 1) * 512;
	u32 init_size = *(u32 *)(bz + 0x260);
	u64 pref = *(u64 *)(bz + 0x258);
	/* The kernel decompresses to pref .. pref + init_size: the modules
	 * must lie above. */
	if (mods[0].start < pref + init_size || mods[1].start < pref + init_size)
		die("modules overlap the kernel's decompression buffer");

	u8 *zp = (u8 *)ZERO_PAGE;
	memset(zp, 0, 4096);
	u32 hdr_end = 0x202 + bz[0x201];
	memcpy(zp + 0x1f1, bz + 0x1f1, hdr_end - 0x1f1);
	zp[0x210] = 0xff; /* type_of_loader: undefined, as coreboot */
	zp[0x211] &= ~0x20; /* no QUIET_FLAG */

	const char *cmd = (mbi->flags & (1 << 2)) ? (const char *)mbi->cmdline : "";
	/* QEMU passes the Multiboot "kernel" name first: skip it. */
	while (*cmd && *cmd != ' ')
		cmd++;
	while (*cmd == ' ')
		cmd++;
	u32 cmdlen = strlen(cmd);
	if (cmdlen >= *(u32 *)(bz + 0x238))
		die("command line too long");
	memcpy((void *)CMDLINE, cmd, cmdlen + 1);
	*(u32 *)(zp + 0x228) = CMDLINE;

	*(u32 *)(zp + 0x218) = mods[1].start;
	*(u32 *)(zp + 0x21c) = mods[1].end - mods[1].start;

	/* e820: the BIOS's map, then the coreboot table reserved (the kernel
	 * lets reserved win over RAM where they overlap). */
	u8 *e = zp + 0x2d0;
	u32 n = 0;
	for (u32 off = 0; off < mbi->mmap_length && n < 127;) {
		struct mb_mmap *m = (struct mb_mmap *)(mbi->mmap_addr + off);
		memcpy(e + 20 * n, &m->addr, 20);
		n++;
		off += m->size + 4;
	}
	u64 cb = CB_ADDR, cblen = CB_SIZE;
	u32 reserved = 2;
	memcpy(e + 20 * n, &cb, 8);
	memcpy(e + 20 * n + 8, &cblen, 8);
	memcpy(e + 20 * n + 16, &reserved, 4);
	n++;
	zp[0x1e8] = n;

	memcpy((void *)KERNEL_PM, bz + pm_off, bzlen - pm_off);
	u32 entry = *(u32 *)(bz + 0x214);
	puts("stage: jumping to the payload at ");
	puthex(entry);
	puts("\n");

	static struct gdt_ptr gp;
	gp.limit = sizeof(gdt) - 1;
	gp.base = (u32)gdt;
	__asm__ volatile(
		"lgdt %0\n"
		"mov $0x18, %%eax\n"
		"mov %%eax, %%ds\n"
		"mov %%eax, %%es\n"
		"mov %%eax, %%ss\n"
		"mov %%eax, %%fs\n"
		"mov %%eax, %%gs\n"
		"xor %%ebp, %%ebp\n"
		"xor %%edi, %%edi\n"
		"xor %%ebx, %%ebx\n"
		"pushl $0x10\n"
		"pushl %1\n"
		"lret\n"
		:
		: "m"(gp), "c"(entry), "S"(ZERO_PAGE)
		: "eax", "memory");
	die("returned from the kernel");
}
