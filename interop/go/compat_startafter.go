//go:build pulse_startafter

// Start options as named in later Go Pulse releases (WithReaderStartAfter,
// WithSinkStartAfter, explicit StartAtNewest). Selected by the build tag
// listed in versions/<version>/build-tags.
package main

import (
	"fmt"
	"strings"

	"goa.design/pulse/streaming/options"
)

func readerStart(spec string) ([]options.Reader, error) {
	switch {
	case spec == "newest":
		return []options.Reader{options.WithReaderStartAtNewest()}, nil
	case spec == "oldest":
		return []options.Reader{options.WithReaderStartAtOldest()}, nil
	case strings.HasPrefix(spec, "after:"):
		return []options.Reader{options.WithReaderStartAfter(strings.TrimPrefix(spec, "after:"))}, nil
	case strings.HasPrefix(spec, "at:"):
		t, err := startTime(strings.TrimPrefix(spec, "at:"))
		return []options.Reader{options.WithReaderStartAt(t)}, err
	}
	return nil, fmt.Errorf("bad start %q", spec)
}

func sinkStart(spec string) ([]options.Sink, error) {
	switch {
	case spec == "newest":
		return []options.Sink{options.WithSinkStartAtNewest()}, nil
	case spec == "oldest":
		return []options.Sink{options.WithSinkStartAtOldest()}, nil
	case strings.HasPrefix(spec, "after:"):
		return []options.Sink{options.WithSinkStartAfter(strings.TrimPrefix(spec, "after:"))}, nil
	case strings.HasPrefix(spec, "at:"):
		t, err := startTime(strings.TrimPrefix(spec, "at:"))
		return []options.Sink{options.WithSinkStartAt(t)}, err
	}
	return nil, fmt.Errorf("bad start %q", spec)
}
