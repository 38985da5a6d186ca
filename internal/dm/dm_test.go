package dm

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestHeaderLayout(t *testing.T) {
	if s := unsafe.Sizeof(unix.DmIoctl{}); s != 312 {
		t.Fatalf("dm_ioctl is %d bytes, want 312", s)
	}
	buf := newBuf("boot", 0)
	if got := unsafe.Offsetof(unix.DmIoctl{}.Name); got != 48 {
		t.Fatalf("name at %d, want 48", got)
	}
	if !bytes.Equal(buf[48:52], []byte("boot")) {
		t.Fatalf("name not at offset 48: %q", buf[48:56])
	}
	if h := header(buf); h.Data_start != 312 || h.Data_size != uint32(len(buf)) || h.Version[0] != 4 {
		t.Fatalf("header %+v", h)
	}
}

func TestAlign8(t *testing.T) {
	for in, want := range map[int]int{0: 0, 1: 8, 8: 8, 9: 16} {
		if got := align8(in); got != want {
			t.Errorf("align8(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestSnapshot(t *testing.T) {
	tg := Snapshot(2048, "253:0", "1:0", 8)
	if tg.Type != "snapshot" || tg.Length != 2048 || string(tg.Params) != "253:0 1:0 N 8" {
		t.Fatalf("%+v %q", tg, tg.Params)
	}
}
