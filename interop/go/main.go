// Command pulse-interop drives goa.design/pulse/streaming for the Node
// interop tests (test/interop.test.ts): a producer, a reader, a sink and
// Destroy, each printing what it did as JSON lines on stdout so the tests
// compare it with what the Node library wrote or read. Payloads travel as
// base64 (encoding/json's []byte) so every byte, NUL and invalid UTF-8
// included, survives the trip.
//
// It is built per Go Pulse version from interop/go/versions/<version>/go.mod;
// the few option names that changed between versions live in compat_*.go.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"goa.design/pulse/streaming"
	"goa.design/pulse/streaming/options"
)

// addSpec is one event to add, one JSON object per stdin line.
type addSpec struct {
	Name    string `json:"name"`
	Topic   string `json:"topic"`
	Payload []byte `json:"payload"`
}

// line is one JSON line of output.
type line struct {
	Op          string `json:"op"`
	ID          string `json:"id,omitempty"`
	Stream      string `json:"stream,omitempty"`
	Sink        string `json:"sink,omitempty"`
	Name        string `json:"name"`
	Topic       string `json:"topic"`
	Payload     []byte `json:"payload"`
	CreatedAtMs int64  `json:"createdAtMs,omitempty"`
	Got         int    `json:"got,omitempty"`
}

var out = bufio.NewWriter(os.Stdout)

// emit writes one line and flushes it at once: the tests wait on "ready".
func emit(l line) {
	b, err := json.Marshal(l)
	if err != nil {
		fail(err)
	}
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
}

func fail(err error) {
	out.Flush()
	fmt.Fprintln(os.Stderr, "pulse-interop:", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: pulse-interop add|read|sink|destroy [flags]"))
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	url := fs.String("redis", "redis://127.0.0.1:6379", "Redis URL")
	stream := fs.String("stream", "", "stream name")
	sinkName := fs.String("sink", "", "sink name (sink)")
	start := fs.String("start", "newest", "newest, oldest, after:<id> or at:<unix ms> (read, sink)")
	count := fs.Int("count", 1, "events to receive before exiting (read, sink)")
	maxLen := fs.Int("maxlen", 0, "stream MaxLen option, 0: the default")
	ttlMs := fs.Int("ttl-ms", 0, "stream TTL option in ms, 0: none")
	sliding := fs.Bool("sliding", false, "with -ttl-ms: a sliding TTL")
	timeoutMs := fs.Int("timeout-ms", 20000, "give up after this long (read, sink)")
	blockMs := fs.Int("block-ms", 500, "block duration of each read (read, sink): short, so Close returns soon")
	ackGraceMs := fs.Int("ack-grace-ms", 5000, "ack grace period of the sink (sink): events its first read brought before Subscribe come again after it")
	subscribeDelayMs := fs.Int("subscribe-delay-ms", 0, "wait this long between NewSink and Subscribe (sink): shows what Go does with its first read")
	hold := fs.Bool("hold", false, "after -count events, print \"done\" and stay open until stdin closes (read, sink)")
	if err := fs.Parse(args); err != nil {
		fail(err)
	}
	if *stream == "" {
		fail(errors.New("-stream is required"))
	}
	opt, err := redis.ParseURL(*url)
	if err != nil {
		fail(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()

	var sopts []options.Stream
	if *maxLen > 0 {
		sopts = append(sopts, options.WithStreamMaxLen(*maxLen))
	}
	if *ttlMs > 0 {
		ttl := time.Duration(*ttlMs) * time.Millisecond
		if *sliding {
			sopts = append(sopts, options.WithStreamSlidingTTL(ttl))
		} else {
			sopts = append(sopts, options.WithStreamTTL(ttl))
		}
	}
	s, err := streaming.NewStream(*stream, rdb, sopts...)
	if err != nil {
		fail(err)
	}
	timeout := time.Duration(*timeoutMs) * time.Millisecond

	switch cmd {
	case "add":
		add(ctx, s, os.Stdin)
	case "read":
		ropt, err := readerStart(*start)
		if err != nil {
			fail(err)
		}
		ropt = append(ropt, options.WithReaderBlockDuration(time.Duration(*blockMs)*time.Millisecond))
		r, err := s.NewReader(ctx, ropt...)
		if err != nil {
			fail(err)
		}
		// Subscribe before anything else: events read before a subscriber
		// exists would not reach this program.
		c := r.Subscribe()
		emit(line{Op: "ready"})
		receive(c, *count, timeout, nil)
		finish(*hold, c, r.Close)
	case "sink":
		if *sinkName == "" {
			fail(errors.New("-sink is required"))
		}
		sopt, err := sinkStart(*start)
		if err != nil {
			fail(err)
		}
		// Go Pulse starts reading in NewSink, before Subscribe: what its first
		// read brings when no channel is subscribed yet is left pending, and
		// only comes again once the ack grace period has passed (20 s by
		// default, the tests' whole timeout: a rare flake on a loaded machine).
		// A short one brings those events back within the timeout.
		sopt = append(sopt,
			options.WithSinkBlockDuration(time.Duration(*blockMs)*time.Millisecond),
			options.WithSinkAckGracePeriod(time.Duration(*ackGraceMs)*time.Millisecond),
		)
		k, err := s.NewSink(ctx, *sinkName, sopt...)
		if err != nil {
			fail(err)
		}
		time.Sleep(time.Duration(*subscribeDelayMs) * time.Millisecond)
		c := k.Subscribe()
		emit(line{Op: "ready"})
		receive(c, *count, timeout, func(e *streaming.Event) error { return k.Ack(ctx, e) })
		finish(*hold, c, func() { k.Close(ctx) })
	case "destroy":
		if err := s.Destroy(ctx); err != nil {
			fail(err)
		}
		emit(line{Op: "destroyed"})
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}

// add adds the events read from r (JSON lines) in order, one Add each.
func add(ctx context.Context, s *streaming.Stream, r io.Reader) {
	dec := json.NewDecoder(r)
	for {
		var spec addSpec
		if err := dec.Decode(&spec); err == io.EOF {
			return
		} else if err != nil {
			fail(err)
		}
		var aopts []options.AddEvent
		if spec.Topic != "" {
			aopts = append(aopts, options.WithTopic(spec.Topic))
		}
		id, err := s.Add(ctx, spec.Name, spec.Payload, aopts...)
		if err != nil {
			fail(err)
		}
		emit(line{Op: "added", ID: id, Name: spec.Name, Topic: spec.Topic, Payload: spec.Payload})
	}
}

// receive prints the first n events of c, acking each with ack when set.
// It exits with status 2 after printing a "timeout" line when fewer come.
func receive(c <-chan *streaming.Event, n int, timeout time.Duration, ack func(*streaming.Event) error) {
	deadline := time.After(timeout)
	for got := 0; got < n; got++ {
		select {
		case e, ok := <-c:
			if !ok {
				fail(fmt.Errorf("subscription closed after %d of %d events", got, n))
			}
			if ack != nil {
				if err := ack(e); err != nil {
					fail(err)
				}
			}
			emit(line{
				Op: "event", ID: e.ID, Stream: e.StreamName, Sink: e.SinkName, Name: e.EventName,
				Topic: e.Topic, Payload: e.Payload, CreatedAtMs: e.CreatedAt().UnixMilli(),
			})
		case <-deadline:
			emit(line{Op: "timeout", Got: got})
			out.Flush()
			os.Exit(2)
		}
	}
}

// finish optionally waits for stdin to close (so the tests can look at Redis
// while the reader or sink is still open), then closes it. Events that come
// after the last one counted are drained unacked, so Close never waits on a
// full channel, and a Close that hangs anyway is reported after 10 s.
func finish(hold bool, c <-chan *streaming.Event, closeIt func()) {
	if hold {
		emit(line{Op: "done"})
		io.Copy(io.Discard, os.Stdin)
	}
	go func() {
		for range c {
		}
	}()
	closed := make(chan struct{})
	go func() {
		closeIt()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		fail(errors.New("Close did not return within 10 s"))
	}
}

// startTime parses the milliseconds of an "at:<ms>" start.
func startTime(ms string) (time.Time, error) {
	var v int64
	if _, err := fmt.Sscan(ms, &v); err != nil {
		return time.Time{}, fmt.Errorf("bad start time %q: %w", ms, err)
	}
	return time.UnixMilli(v), nil
}
