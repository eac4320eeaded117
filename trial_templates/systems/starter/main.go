// ratelimit: a token-bucket rate limiter that other services ask before doing work.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	port := flag.Int("port", 8080, "port to listen on")
	rate := flag.Float64("rate", 10, "tokens per second each key gets back")
	burst := flag.Float64("burst", 20, "most tokens a key can hold")
	idle := flag.Duration("idle", 10*time.Minute, "drop a key's bucket after this long unused")
	flag.Parse()
	limiter := NewLimiter(*rate, *burst, *idle, time.Now)
	log.Fatal(http.ListenAndServe(fmt.Sprintf(":%d", *port), newMux(limiter)))
}
