package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestSetGCPercent: without GOGC the lean target applies; an operator's
// GOGC is left alone.
func TestSetGCPercent(t *testing.T) {
	orig, had := os.LookupEnv("GOGC")
	defer func() {
		if had {
			os.Setenv("GOGC", orig)
		}
		debug.SetGCPercent(100)
	}()

	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	setGCPercent()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: GC target %d, want %d", got, defaultGCPercent)
	}

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // as the runtime does at start with GOGC=150
	setGCPercent()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("with GOGC=150: GC target %d, want 150", got)
	}
}
