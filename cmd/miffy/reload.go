package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/miffy-proxy/miffy/internal/config"
	"github.com/miffy-proxy/miffy/internal/control"
)

// watchConfig calls reload on SIGHUP and when the config file changes. It
// returns a function that stops watching.
func watchConfig(so serveOpts, log zerolog.Logger, reload func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup

	var events <-chan fsnotify.Event
	var watcher *fsnotify.Watcher
	file := configFile(so)
	if file != "" {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			// Watch the folder: editors and config managers replace the
			// file rather than write it in place.
			if err = w.Add(filepath.Dir(file)); err == nil {
				watcher, events = w, w.Events
			} else {
				w.Close()
			}
		}
		if err != nil {
			log.Warn().Err(err).Str("file", file).Msg("cannot watch the config file; reload with SIGHUP")
		}
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		// Writes come in bursts; reload once they settle.
		var settle <-chan time.Time
		for {
			select {
			case <-done:
				return
			case <-hup:
				log.Info().Msg("SIGHUP: reloading the config")
				reload()
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if filepath.Clean(ev.Name) == file && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					settle = time.After(100 * time.Millisecond)
				}
			case <-settle:
				settle = nil
				log.Info().Str("file", file).Msg("config file changed: reloading")
				reload()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
		if watcher != nil {
			watcher.Close()
		}
	}
}

// configFile is the file loadConfig reads, "" when there is none.
func configFile(so serveOpts) string {
	path := so.path
	if path == "" {
		path = lookupEnv(so.environ, "MIFFY_CONFIG")
	}
	if path == "" {
		if _, err := os.Stat("config.toml"); errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		path = "config.toml"
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	return abs
}

// tokenFile reads a bearer token (one line) from the file path that the
// config key names; "" when path is empty. An empty file is an error.
func tokenFile(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	t := control.TrimToken(string(b))
	if t == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return t, nil
}

// adminToken is the admin API's token: MIFFY_ADMIN_TOKEN, else the file
// [management] admin_token_file names; "" leaves the admin API off.
func adminToken(cfg *config.Config, environ []string) (string, error) {
	if t := control.TrimToken(lookupEnv(environ, "MIFFY_ADMIN_TOKEN")); t != "" {
		return t, nil
	}
	return tokenFile("management.admin_token_file", cfg.Management.AdminTokenFile)
}
