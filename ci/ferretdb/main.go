// Command ferretdb-wrapper runs an embedded FerretDB (SQLite backend) for CI.
//
// The upstream `ferretdb` command of v1.24.2 panics at start when installed
// with `go install` (FerretDB issue 2982), so CI builds this tiny wrapper
// around the embeddable package instead.
//
// Usage:
//
//	ferretdb-wrapper -dir /tmp/data/ -port 27018
//
// Flags fall back to the FERRETDB_DIR and FERRETDB_PORT environment variables.
// The MongoDB URI is printed on stdout once the listener is bound; the process
// runs until SIGINT or SIGTERM and then shuts down cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-wrapper:", err)
		os.Exit(1)
	}
}

func run() error {
	defPort, err := strconv.Atoi(envOr("FERRETDB_PORT", "27018"))
	if err != nil {
		return fmt.Errorf("bad FERRETDB_PORT: %w", err)
	}

	dir := flag.String("dir", envOr("FERRETDB_DIR", ""), "SQLite data directory (created if missing; env FERRETDB_DIR)")
	host := flag.String("host", envOr("FERRETDB_HOST", "127.0.0.1"), "listen address (env FERRETDB_HOST)")
	port := flag.Int("port", defPort, "listen TCP port (env FERRETDB_PORT)")
	logLevel := flag.String("log-level", envOr("FERRETDB_LOG_LEVEL", "warn"), "log level: debug, info, warn, error (env FERRETDB_LOG_LEVEL)")
	flag.Parse()

	if *dir == "" {
		return errors.New("-dir (or FERRETDB_DIR) is required")
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("bad log level %q: %w", *logLevel, err)
	}

	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	// FerretDB wants a directory URI that ends with a slash.
	if !strings.HasSuffix(abs, "/") {
		abs += "/"
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TCP: net.JoinHostPort(*host, strconv.Itoa(*port)),
		},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs,
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// In v1.24.2 the listener is bound by ferretdb.New, so the URI is known now.
	fmt.Println(f.MongoDBURI())

	err = <-done
	fmt.Fprintln(os.Stderr, "ferretdb-wrapper: stopped")
	return err
}
