package uring

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestABISizes(t *testing.T) {
	if s := unsafe.Sizeof(SQE{}); s != 64 {
		t.Errorf("SQE %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(CQE{}); s != 16 {
		t.Errorf("CQE %d bytes, want 16", s)
	}
	if s := unsafe.Sizeof(Params{}); s != 120 {
		t.Errorf("params %d bytes, want 120", s)
	}
	if o := unsafe.Offsetof(SQE{}.UserData); o != 32 {
		t.Errorf("user_data at %d, want 32", o)
	}
	if o := unsafe.Offsetof(SQE{}.BufIndex); o != 40 {
		t.Errorf("buf_group at %d, want 40", o)
	}
}

func newRing(t *testing.T, entries uint32) *Ring {
	r, err := New(entries, Params{})
	if Disabled(err) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestNopsAndWrap(t *testing.T) {
	r := newRing(t, 8)
	var cqes []CQE
	// More than the ring holds, in rounds: heads and tails wrap.
	for round := 0; round < 5; round++ {
		for i := 0; i < 8; i++ {
			sqe := r.GetSQE()
			if sqe == nil {
				t.Fatalf("round %d: SQ full after %d", round, i)
			}
			sqe.Opcode = OpNop
			sqe.UserData = uint64(round*100 + i)
		}
		if r.GetSQE() != nil {
			t.Fatal("GetSQE handed out more than the ring holds")
		}
		if _, err := r.Submit(8); err != nil {
			t.Fatal(err)
		}
		cqes = r.PeekCQEs(cqes[:0])
		if len(cqes) != 8 {
			t.Fatalf("round %d: %d completions, want 8", round, len(cqes))
		}
		for i, c := range cqes {
			if c.UserData != uint64(round*100+i) || c.Res != 0 {
				t.Fatalf("cqe %+v", c)
			}
		}
		r.Advance(uint32(len(cqes)))
	}
}

func TestProbeAndTimeout(t *testing.T) {
	r := newRing(t, 4)
	ops, err := r.Probe()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []uint8{OpNop, OpAccept, OpRecv, OpSend, OpTimeout} {
		if !ops[op] {
			t.Errorf("op %d not supported?", op)
		}
	}
	start := time.Now()
	if err := waitTimeout(r, 50*time.Millisecond, 7); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("timeout fired after %v", d)
	}
}

// waitTimeout submits a timeout of d with user data ud and waits for it
// with Submit(1): afterwards its completion (-ETIME) is the one ready.
func waitTimeout(r *Ring, d time.Duration, ud uint64) error {
	ts := unix.NsecToTimespec(int64(d))
	sqe := r.GetSQE()
	sqe.Opcode, sqe.Addr, sqe.Len, sqe.UserData = OpTimeout, uint64(uintptr(unsafe.Pointer(&ts))), 1, ud
	start := time.Now()
	_, err := r.Submit(1)
	runtime.KeepAlive(&ts)
	if err != nil {
		return err
	}
	c := r.PeekCQEs(nil)
	if len(c) != 1 || c[0].UserData != ud || c[0].Res != -int32(unix.ETIME) {
		return fmt.Errorf("Submit(1) returned after %v with completions %+v, want the timeout's", time.Since(start), c)
	}
	r.Advance(1)
	return nil
}

// TestBufRing: RECVs with buffer selection take buffers from a registered
// buffer ring in the order they were added, the data lands in the buffer
// the completion names, and buffers given back are used again, across
// more rounds than the 16-bit tail counts before it wraps.
func TestBufRing(t *testing.T) {
	r := newRing(t, 8)
	const n, size, group = 4, 64, 7
	br, err := r.RegisterBufRing(n, group)
	if err != nil {
		t.Skipf("no buffer rings in this kernel: %v", err)
	}
	defer br.Free()
	bufs := make([]byte, n*size)
	for bid := 0; bid < n; bid++ {
		br.Add(unsafe.Pointer(&bufs[bid*size]), size, uint16(bid))
	}
	br.Publish()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var cqes []CQE
	want := uint16(0)
	for i := 0; i < 70000; i++ {
		msg := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
		if _, err := unix.Write(fds[1], msg); err != nil {
			t.Fatal(err)
		}
		e := r.GetSQE()
		e.Opcode, e.Fd, e.Flags = OpRecv, int32(fds[0]), SQEBufferSelect
		e.Len, e.BufIndex = size, group
		if _, err := r.Submit(1); err != nil {
			t.Fatal(err)
		}
		cqes = r.PeekCQEs(cqes[:0])
		if len(cqes) != 1 || cqes[0].Res != int32(len(msg)) || cqes[0].Flags&CQEFBuffer == 0 {
			t.Fatalf("recv %d: %+v", i, cqes)
		}
		r.Advance(1)
		bid := uint16(cqes[0].Flags >> CQEBufferShift)
		if bid != want%n {
			t.Fatalf("recv %d: buffer %d, want %d (taken in the order added)", i, bid, want%n)
		}
		if got := bufs[int(bid)*size : int(bid)*size+len(msg)]; string(got) != string(msg) {
			t.Fatalf("recv %d: buffer %d holds % x, want % x", i, bid, got, msg)
		}
		want++
		br.Add(unsafe.Pointer(&bufs[int(bid)*size]), size, bid)
		br.Publish()
	}
}

// TestDeferTaskrunOwner: a ring made disabled with SetupSingleIssuer and
// SetupDeferTaskrun belongs to the thread that enables it; its timeout
// completes in that thread's wait, and another thread may not submit
// (the kernel answers EEXIST), which proves the flags took.
func TestDeferTaskrunOwner(t *testing.T) {
	r, err := New(4, Params{Flags: SetupSingleIssuer | SetupDeferTaskrun | SetupRDisabled})
	if Disabled(err) {
		t.Skipf("no deferred task work here (Linux 6.1): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Probe(); err != nil {
		t.Fatalf("probe before the ring is enabled: %v", err)
	}
	owned := make(chan error)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := r.Enable(); err != nil {
			owned <- err
			return
		}
		if err := waitTimeout(r, 10*time.Millisecond, 9); err != nil {
			owned <- fmt.Errorf("owner's timeout: %w", err)
			return
		}
		owned <- nil
		<-release // keep the owner thread alive while the other one tries
	}()
	if err := <-owned; err != nil {
		t.Fatal(err)
	}
	defer close(release)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sqe := r.GetSQE()
	sqe.Opcode, sqe.UserData = OpNop, 1
	if _, err := r.Submit(1); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("a second thread's submit: %v, want EEXIST", err)
	}
}

// TestSubmitWaitsThroughSignals: io_uring_enter that has submitted
// something reports the submission and drops the interrupted wait when a
// signal arrives, so Submit(wait) must wait again until the completions
// it was asked for are there. Signals reach Go threads all the time
// (the runtime's own preemption signal, SIGURG, is the one sent here).
func TestSubmitWaitsThroughSignals(t *testing.T) {
	for _, flags := range []uint32{0, SetupSingleIssuer | SetupDeferTaskrun} {
		r, err := New(4, Params{Flags: flags})
		if Disabled(err) || (flags != 0 && err != nil) {
			t.Logf("flags %#x: %v", flags, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer r.Close()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid := unix.Gettid()
			stop := make(chan struct{})
			defer close(stop)
			go func() { // signal the waiting thread every 5 ms
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
						unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
					}
				}
			}()
			if err := waitTimeout(r, 100*time.Millisecond, 3); err != nil {
				t.Fatalf("flags %#x: %v", flags, err)
			}
		}()
	}
}
