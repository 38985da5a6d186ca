//go:build nodiag

package main

import "errors"

// This build has no HTTP diagnostics server (the small ROM build: make
// BOARD=x220 without DIAG=1). The console diagnostics remain.

const diagBuilt = false

type noState struct{}

func (noState) Set(string) {}

func newState() bootState { return noState{} }

const defaultDiagAddr = ""

func (b *booter) startDiag(string) error {
	return errors.New("this payload was built without the HTTP diagnostics server (build it with DIAG=1)")
}

func (b *booter) stopDiag() {}

func (b *booter) diagURL() string { return "" }
