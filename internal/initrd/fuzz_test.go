package initrd

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// FuzzRead feeds arbitrary initrds to the reader: it must end in a result
// or an error within its limits, never a panic or a hang.
func FuzzRead(f *testing.F) {
	var cp bytes.Buffer
	for _, e := range []struct{ name, data string }{{"etc/crypttab", "root UUID=1 none luks\n"}, {"TRAILER!!!", ""}} {
		hdr := []byte("070701" + "00000001" + "000081a4" + "00000000" + "00000000" + "00000001" + "00000000")
		hdr = append(hdr, []byte(hex8s(len(e.data))+"00000000"+"00000000"+"00000000"+"00000000"+hex8s(len(e.name)+1)+"00000000")...)
		cp.Write(hdr)
		cp.WriteString(e.name + "\x00")
		for cp.Len()%4 != 0 {
			cp.WriteByte(0)
		}
		cp.WriteString(e.data)
		for cp.Len()%4 != 0 {
			cp.WriteByte(0)
		}
	}
	f.Add(cp.Bytes())
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(cp.Bytes())
	w.Close()
	f.Add(append(append([]byte{}, cp.Bytes()...), gz.Bytes()...))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x05, 0x29, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'})
	f.Add([]byte{0x02, 0x21, 0x4c, 0x18, 6, 0, 0, 0, 0x50, '0', '7', '0', '7', '0'})
	f.Add([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 1, 0x69, 0x22, 0xde, 0x36})
	f.Fuzz(func(t *testing.T, b []byte) {
		rd, err := Read(b, func(e Entry) bool { return true }, Limits{MaxUnpacked: 4 << 20, MaxEntries: 1000, MaxFileSize: 1 << 20})
		if rd == nil {
			t.Fatalf("nil result (err %v)", err)
		}
		for n, d := range rd.Files {
			if int64(len(d)) > 1<<20 {
				t.Fatalf("%s: %d bytes kept", n, len(d))
			}
		}
	})
}

func hex8s(n int) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}
