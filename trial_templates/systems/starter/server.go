package main

import (
	"encoding/json"
	"net/http"
)

type decision struct {
	Key       string  `json:"key"`
	Allowed   bool    `json:"allowed"`
	Remaining float64 `json:"remaining"`
}

func newMux(l *Limiter) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/v1/allow", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		if key == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "key is required"})
			return
		}
		allowed, remaining := l.Allow(key)
		status := http.StatusOK
		if !allowed {
			status = http.StatusTooManyRequests
		}
		writeJSON(w, status, decision{Key: key, Allowed: allowed, Remaining: remaining})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
