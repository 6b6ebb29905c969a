package provisioner

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// recordingUndo pushes named steps that record their run into log.
func recordingUndo(c *cleanup, log *[]string, name string, err error) {
	c.push(name, func(context.Context) error {
		*log = append(*log, name)
		return err
	})
}

func TestCleanupRunsInReverseOrder(t *testing.T) {
	var c cleanup
	var log []string
	for _, n := range []string{"delete volume", "unexport volume", "delete Secret"} {
		recordingUndo(&c, &log, n, nil)
	}
	if err := c.run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	want := []string{"delete Secret", "unexport volume", "delete volume"}
	if !slices.Equal(log, want) {
		t.Errorf("undo order = %q, want %q", log, want)
	}
	log = nil
	if err := c.run(context.Background()); err != nil || len(log) != 0 {
		t.Errorf("second run undid %q (err %v), want nothing: steps run once", log, err)
	}
}

func TestCleanupContinuesAfterFailedStepsAndJoinsErrors(t *testing.T) {
	var c cleanup
	var log []string
	errVolume := errors.New("volume busy")
	errSecret := errors.New("apiserver down")
	recordingUndo(&c, &log, "delete volume v1", errVolume)
	recordingUndo(&c, &log, "unexport volume v1", nil)
	recordingUndo(&c, &log, "delete Secret ns/s", errSecret)

	err := c.run(context.Background())
	want := []string{"delete Secret ns/s", "unexport volume v1", "delete volume v1"}
	if !slices.Equal(log, want) {
		t.Errorf("undo order = %q, want %q", log, want)
	}
	if !errors.Is(err, errVolume) || !errors.Is(err, errSecret) {
		t.Fatalf("run = %v, want both failures joined", err)
	}
	wantMsg := "delete Secret ns/s: apiserver down\ndelete volume v1: volume busy"
	if err.Error() != wantMsg {
		t.Errorf("run =\n%s\nwant\n%s", err, wantMsg)
	}
}

func TestCleanupDisarmKeepsTheWork(t *testing.T) {
	var c cleanup
	var log []string
	recordingUndo(&c, &log, "delete volume", nil)
	c.disarm()
	if err := c.run(context.Background()); err != nil || len(log) != 0 {
		t.Errorf("disarmed cleanup undid %q (err %v)", log, err)
	}
}
