//! Buffer pool: GPU buffers are never freed while kiln runs; they go back to a free list keyed by
//! (usage kind, size class) and are handed out again.
//!
//! Size classes keep the number of distinct sizes small, so a buffer released by one tensor fits
//! the next tensor of a similar size:
//! 1. requests up to 4 KiB round up to a multiple of 256 bytes;
//! 2. larger requests round up to a multiple of 1/16 of their power-of-two floor, so the waste is
//!    at most 6.25 %;
//! 3. a class larger than the device's `max_buffer_size` falls back to the exact (4-aligned) size.

use std::collections::HashMap;

/// What a pooled buffer is used for; each kind has its own wgpu usage flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BufKind {
    /// Tensor storage: STORAGE | COPY_SRC | COPY_DST.
    Storage,
    /// Kernel parameters: UNIFORM | COPY_DST.
    Uniform,
    /// Readback: MAP_READ | COPY_DST.
    Staging,
}

impl BufKind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            BufKind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            BufKind::Uniform => U::UNIFORM | U::COPY_DST,
            BufKind::Staging => U::MAP_READ | U::COPY_DST,
        }
    }

    fn label(self) -> &'static str {
        match self {
            BufKind::Storage => "kiln storage",
            BufKind::Uniform => "kiln params",
            BufKind::Staging => "kiln readback",
        }
    }
}

/// A GPU buffer with a stable id (used as a bind-group cache key).
#[derive(Clone, Debug)]
pub(crate) struct GpuBuffer {
    pub id: u64,
    pub kind: BufKind,
    pub size: u64,
    pub buffer: wgpu::Buffer,
}

/// What the buffer plan of the last realization needed, as [`Context::last_plan`] reports it:
/// the measurement behind `kiln bench`'s memory line and `tests/memory.rs`. All sizes but
/// `planned_bytes` are exact (no size classes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// Ops (nodes) in the realization.
    pub steps: usize,
    /// The largest set of intermediates that must be live at once: over the realized order, the
    /// maximum at any position of the bytes of intermediates produced at or before it and still
    /// to be read at or after it.
    pub live_intermediate_peak_bytes: u64,
    /// The same maximum with the kept outputs counted too, each from the position that produces
    /// it to the end: what this order needs beyond its inputs when nothing is updated in place.
    pub live_peak_with_kept_bytes: u64,
    /// Bytes of the outputs the realization keeps (targets and held tensors).
    pub kept_bytes: u64,
    /// Bytes of the already-realized tensors it reads (each once). They stay allocated until
    /// the realization ends, even where they are read for the last time by it.
    pub input_bytes: u64,
    /// Bytes of the storage buffers the plan took from the pool (size classes included): what
    /// the realization added to live memory, kept outputs and intermediates together.
    pub planned_bytes: u64,
    /// Arenas (buffers holding intermediates at offsets) the plan used.
    pub arenas: usize,
    /// Bytes the intermediates' placement spans in those arenas (before size classes): the
    /// planner's answer to `live_intermediate_peak_bytes`.
    pub arena_bytes: u64,
}

/// Memory and object counters, as returned by [`crate::Context::memory_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in buffers handed out: tensor storage, parameters and readback buffers in use.
    pub live_bytes: u64,
    /// Bytes in buffers waiting in the pool for reuse.
    pub pooled_bytes: u64,
    /// The largest `live_bytes` seen.
    pub peak_live_bytes: u64,
    /// The largest `live_bytes + pooled_bytes` seen: what kiln ever held on the device.
    pub peak_bytes: u64,
    /// Buffers created since the context was made.
    pub buffers_created: u64,
    /// Compute pipelines created.
    pub pipelines_created: u64,
    /// Bind groups created.
    pub bind_groups_created: u64,
    /// Realizations run (each one submission, unless a limit forced a split).
    pub realizations: u64,
    /// Queue submissions made by realizations.
    pub submissions: u64,
    /// Kernel dispatches encoded.
    pub dispatches: u64,
    /// Dispatches of the last realization.
    pub last_dispatches: u64,
    /// Dispatches of generated (fused elementwise) kernels, a part of `dispatches`.
    pub fused_kernels: u64,
    /// Recorded ops computed inside fused kernels.
    pub fused_ops: u64,
}

/// The size class a request of `bytes` is served from when buffers are at most
/// `max_buffer_size` bytes (the rules at the top of this module).
pub(crate) fn size_class(bytes: u64, max_buffer_size: u64) -> u64 {
    let bytes = bytes.max(4);
    let class = if bytes <= 4096 {
        bytes.div_ceil(256) * 256
    } else {
        let floor = 1u64 << (63 - bytes.leading_zeros());
        let step = floor / 16;
        bytes.div_ceil(step) * step
    };
    if class > max_buffer_size {
        bytes.div_ceil(4) * 4
    } else {
        class
    }
}

/// A range of a pooled buffer that one binding covers: a whole buffer (a tensor's own
/// storage) or a slice of a realization's arena (an intermediate placed at an offset).
#[derive(Clone, Debug)]
pub(crate) struct BufferSlice {
    pub buf: GpuBuffer,
    /// Bytes from the buffer's start; a multiple of `min_storage_buffer_offset_alignment`.
    pub offset: u64,
    /// Bytes bound, or `None` for the rest of the buffer.
    pub size: Option<u64>,
}

impl BufferSlice {
    /// How a bind group binds it.
    pub fn binding(&self) -> Binding<'_> {
        Binding {
            buf: &self.buf,
            offset: self.offset,
            size: self.size,
        }
    }

    /// All of `buf`.
    pub fn whole(buf: GpuBuffer) -> BufferSlice {
        BufferSlice {
            buf,
            offset: 0,
            size: None,
        }
    }
}

/// A borrowed [`BufferSlice`]: what one bind-group entry binds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Binding<'a> {
    pub buf: &'a GpuBuffer,
    pub offset: u64,
    pub size: Option<u64>,
}

impl<'a> Binding<'a> {
    /// All of `buf`.
    pub fn whole(buf: &'a GpuBuffer) -> Binding<'a> {
        Binding {
            buf,
            offset: 0,
            size: None,
        }
    }
}

pub(crate) struct BufferPool {
    free: HashMap<(BufKind, u64), Vec<GpuBuffer>>,
    next_id: u64,
    max_buffer_size: u64,
    pub stats: MemoryStats,
}

impl BufferPool {
    pub fn new(max_buffer_size: u64) -> Self {
        BufferPool {
            free: HashMap::new(),
            next_id: 1,
            max_buffer_size,
            stats: MemoryStats::default(),
        }
    }

    /// The size class a request of `bytes` is served from.
    pub fn class(&self, bytes: u64) -> u64 {
        size_class(bytes, self.max_buffer_size)
    }

    /// The largest buffer the pool creates (the device's `max_buffer_size`, capped at its
    /// `max_storage_buffer_binding_size`).
    pub fn max_buffer_size(&self) -> u64 {
        self.max_buffer_size
    }

    /// Takes a buffer of at least `bytes` from the pool, creating one if none is free.
    pub fn acquire(&mut self, device: &wgpu::Device, kind: BufKind, bytes: u64) -> GpuBuffer {
        let size = self.class(bytes);
        // Hand out the free buffer with the lowest id: the choice then depends only on which
        // buffers are free, not on the order they came back, so a step that repeats (a training
        // step whose parameters alternate between two sets of buffers) reuses the same buffers
        // and therefore the same cached bind groups.
        let buf = match self.free.get_mut(&(kind, size)).and_then(|list| {
            let i = (0..list.len()).min_by_key(|&i| list[i].id)?;
            Some(list.swap_remove(i))
        }) {
            Some(buf) => {
                self.stats.pooled_bytes -= size;
                buf
            }
            None => {
                let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(kind.label()),
                    size,
                    usage: kind.usage(),
                    mapped_at_creation: false,
                });
                self.stats.buffers_created += 1;
                let id = self.next_id;
                self.next_id += 1;
                GpuBuffer {
                    id,
                    kind,
                    size,
                    buffer,
                }
            }
        };
        self.stats.live_bytes += size;
        self.stats.peak_live_bytes = self.stats.peak_live_bytes.max(self.stats.live_bytes);
        let total = self.stats.live_bytes + self.stats.pooled_bytes;
        self.stats.peak_bytes = self.stats.peak_bytes.max(total);
        buf
    }

    /// Restarts the peaks from the current live and pooled bytes.
    pub fn reset_peaks(&mut self) {
        self.stats.peak_live_bytes = self.stats.live_bytes;
        self.stats.peak_bytes = self.stats.live_bytes + self.stats.pooled_bytes;
    }

    /// Returns a buffer to the pool.
    pub fn release(&mut self, buf: GpuBuffer) {
        self.stats.live_bytes -= buf.size;
        self.stats.pooled_bytes += buf.size;
        self.free.entry((buf.kind, buf.size)).or_default().push(buf);
    }

    /// Destroys every pooled buffer; returns the ids of the buffers dropped.
    pub fn trim(&mut self) -> Vec<u64> {
        let mut ids = Vec::new();
        for (_, list) in self.free.drain() {
            for buf in list {
                ids.push(buf.id);
                buf.buffer.destroy();
            }
        }
        self.stats.pooled_bytes = 0;
        ids
    }
}
