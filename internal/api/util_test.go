package api_test

import (
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func storeSQLite(t *testing.T) store.Store { return storetest.OpenSQLite(t) }

func sleep() { time.Sleep(20 * time.Millisecond) }
