package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	newMux().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealth(t *testing.T) {
	if code, body := get(t, "/health"); code != 200 || body != "ok" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestGreeting(t *testing.T) {
	if code, body := get(t, "/greet?name=Ada"); code != 200 || !strings.Contains(body, "Hello, Ada!") {
		t.Fatalf("got %d %q", code, body)
	}
}
