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
	const workers, rounds = 64, 20
	var allowed atomic.Int64
	// Rounds, each started at once and awaited whole: in a round, every worker's decision on the
	// shared key is its last step before wg.Done, so nothing but the limiter's own locking orders
	// one worker's decision before another's. A decision made outside the lock is then a data race
	// on every run, whatever the scheduler does. (Without rounds, a worker that ran all its calls
	// in one time slice had each decision ordered before the others' by its own next Lock, and the
	// detector could miss the defect on a busy machine.)
	for r := 0; r < rounds; r++ {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				l.Allow(fmt.Sprintf("own-%d", g))
				if ok, _ := l.Allow("shared"); ok {
					allowed.Add(1)
				}
			}(g)
		}
		close(start)
		wg.Wait()
	}
	if n := allowed.Load(); n != 500 {
		t.Fatalf("%d of %d concurrent requests allowed on one key, want exactly the burst of 500", n, workers*rounds)
	}
}
