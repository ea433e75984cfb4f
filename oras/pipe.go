package oras

import (
	"hash"
	"io"
	"sync"
)

// pipeBuffers and pipeBufSize bound the memory of one pipelined copy to
// 1 MiB, so that --concurrency streams at once stay well inside the pull's
// memory budget (with 1 MiB buffers each copy held 4 MiB: 8 streams, 32).
const (
	pipeBuffers = 4
	pipeBufSize = 256 << 10
)

var pipePool = sync.Pool{New: func() any { b := make([]byte, pipeBufSize); return &b }}

// pipeCopy copies src to dst and h at once: one goroutine reads, one hashes
// and one writes, so the kernel's copy into the file and the hash run on
// different cores. At most pipeBuffers buffers are in flight.
func pipeCopy(dst io.Writer, h hash.Hash, src io.Reader, t Tracker) (int64, error) {
	type chunk struct {
		buf *[]byte
		n   int
		wg  *sync.WaitGroup
	}
	toHash := make(chan chunk, pipeBuffers)
	toWrite := make(chan chunk, pipeBuffers)
	free := make(chan struct{}, pipeBuffers)
	for i := 0; i < pipeBuffers; i++ {
		free <- struct{}{}
	}
	var werr error
	var workers sync.WaitGroup
	workers.Add(2)
	go func() {
		defer workers.Done()
		for c := range toHash {
			h.Write((*c.buf)[:c.n])
			c.wg.Done()
		}
	}()
	go func() {
		defer workers.Done()
		for c := range toWrite {
			if werr == nil {
				if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
					werr = err
				}
			}
			c.wg.Done()
		}
	}()
	var total int64
	var rerr error
	for {
		<-free
		bp := pipePool.Get().(*[]byte)
		n, err := io.ReadFull(src, *bp)
		if n > 0 {
			wg := &sync.WaitGroup{}
			wg.Add(2)
			c := chunk{buf: bp, n: n, wg: wg}
			toHash <- c
			toWrite <- c
			go func() { wg.Wait(); pipePool.Put(bp); free <- struct{}{} }()
			total += int64(n)
			t.Add(int64(n))
		} else {
			pipePool.Put(bp)
			free <- struct{}{}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(toHash)
	close(toWrite)
	workers.Wait()
	if rerr != nil {
		return total, rerr
	}
	return total, werr
}
