package main

// Hidden, run with -race: the planted defect (reference/NOTES.md). Any data race fails the run.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHiddenConcurrentDecisionsAreExactAndRaceFree(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(0, 500, time.Minute, func() time.Time { return now })
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
				l.Allow(fmt.Sprintf("own-%d", g))
			}
		}(g)
	}
	wg.Wait()
	if n := allowed.Load(); n != 500 {
		t.Fatalf("%d of 1280 concurrent requests allowed on one key, want exactly the burst of 500", n)
	}
}
