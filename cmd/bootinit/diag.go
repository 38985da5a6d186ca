//go:build !nodiag

package main

import (
	fmt "github.com/romboot/romboot/internal/tinyfmt"
	"strings"
	"time"

	"github.com/romboot/romboot/internal/diag"
	"github.com/romboot/romboot/internal/httpd"
)

// defaultDiagAddr is where `d` in the recovery menu serves when the command
// line named no address.
const defaultDiagAddr = "0.0.0.0:80"

// diagBuilt says whether this build has the HTTP diagnostics server.
const diagBuilt = true

// newState returns the state the diagnostics page shows.
func newState() bootState { return &diag.State{} }

// startDiag starts the diagnostics server on addr, once. The boot goes on
// while it serves; the page shows the state live. No socket is opened
// unless this is called (romboot.diag= or `d` in the recovery menu).
// romboot.diag_token= makes every page but /healthz ask for that token;
// romboot.diag_hosts=a,b names the host names the server answers to
// besides its IP addresses (against DNS rebinding). The server's limits
// (connections, memory, timeouts) are httpd's defaults, sized so that it
// never takes the descriptors or the memory the boot needs.
func (b *booter) startDiag(addr string) error {
	if b.diagSrv != nil {
		return nil
	}
	st, _ := b.state.(*diag.State)
	access := httpd.Access{Token: b.opts.diagToken, Open: []string{"/healthz"}}
	if h := b.opts.diagHosts; h != "" {
		access.Hosts = strings.Split(h, ",")
	}
	s, err := httpd.New(httpd.Config{
		Engine:      b.opts.diagEngine, // pool (default) or uring
		Addr:        addr,
		Workers:     2,
		StopTimeout: time.Second,
		Nice:        10, // the boot comes first
		Handler:     httpd.Protect(diag.Handler(diag.Sources{Version: version, Log: b.log, State: st, Root: "/"}), access),
		Logf:        b.log.Printf,
	})
	if err != nil {
		return fmt.Errorf("diagnostics server on %s: %w", addr, err)
	}
	s.Serve()
	b.diagSrv = s
	b.log.Printf("diagnostics (%s engine): %s", s.Name(), b.diagURL())
	if access.Token != "" {
		b.log.Printf("diagnostics: a token is required (romboot.diag_token=): curl -H 'Authorization: Bearer TOKEN' or ?token=TOKEN")
	}
	return nil
}

// diagURL says where the running server can be reached.
func (b *booter) diagURL() string {
	s, ok := b.diagSrv.(httpd.Engine)
	if !ok {
		return ""
	}
	return fmt.Sprintf("http://%s/ (this machine's addresses: %s)", s.Addr(), addresses())
}

// diagStopTimeout bounds stopping the server: a stuck connection must not
// hold the boot.
const diagStopTimeout = 2 * time.Second

// stopDiag closes the server's sockets before /boot is closed and the kexec
// happens, waiting at most diagStopTimeout.
func (b *booter) stopDiag() {
	s, ok := b.diagSrv.(httpd.Engine)
	b.diagSrv = nil
	if !ok {
		return
	}
	done := make(chan struct{})
	go func() { s.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(diagStopTimeout):
		b.log.Printf("diagnostics server did not stop within %v; booting anyway", diagStopTimeout)
	}
}

// addresses lists the network addresses the kernel configured (ip=).
func addresses() string {
	var out []string
	for _, n := range diag.Network(diag.Sources{Root: "/"}) {
		if n.Name == "lo" {
			continue
		}
		for _, a := range n.Addrs {
			if !strings.HasPrefix(a, "fe80:") {
				out = append(out, n.Name+" "+a)
			}
		}
	}
	if len(out) == 0 {
		return "none: add ip=dhcp to the payload's command line"
	}
	return strings.Join(out, ", ")
}
