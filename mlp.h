/* mlp.h - v0.9.0 - multi-layer perceptrons in one C header - MIT license (see the end)

   Do this:
      #define MLP_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the
   implementation; every other file includes it without the define.

       #include ...
       #define MLP_IMPLEMENTATION
       #include "mlp.h"

   Link with -lm (threads are pthreads: glibc 2.34+ needs no -pthread; on
   Windows they are Win32 threads and nothing is needed).

   WHAT IT IS
      Matrices (with views), matrix multiply, activations (ReLU, sigmoid,
      tanh, identity), losses (softmax cross-entropy, Euclidean), dense,
      batch normalisation and dropout layers, backpropagation over
      mini-batches, SGD with momentum / Nesterov / Adam / AdamW,
      learning-rate schedules, evaluation (loss, accuracy, confusion matrix),
      data augmentation, strict IDX (MNIST) and CSV loaders, model files and
      checkpoints (with the inputs' standardisation and the classes' names),
      export as standalone C source, the command-line flags of our training
      programs, and MNIST-style preprocessing of photos of digits.
      Standard C99 library only (+ the OS's threads); no global mutable state
      but a per-thread last-error message.

   WHAT IT DOES NOT DO
      - GPUs: it runs on the CPU (SSE2, AVX2+FMA, AVX-512, NEON or
        WebAssembly SIMD128 kernels).
      - Other number types: everything is 32-bit float.
      - Other layer kinds: no convolutions, recurrent layers, attention, or
        automatic differentiation of arbitrary graphs; dense layers only.
      - Data that does not fit in memory (of each process, when training
        over several: DISTRIBUTED TRAINING).
      - Share one network between threads: a network is used by one thread
        at a time (it has its own worker threads inside). For many threads,
        give each its own mlp_clone: cloning only reads the original, so
        any number of threads may clone one network at once (make test-tsan).

   QUICK START (XOR, the whole program; see examples/xor.c)
      float X[8] = {0,0, 0,1, 1,0, 1,1};
      int   y[4] = {0, 1, 1, 0};
      mlp_net *net = mlp_create_spec("2-8-2", MLP_ACT_TANH, MLP_LOSS_CE, 42);
      if (!net) { fprintf(stderr, "%s\n", mlp_error()); return 1; }
      for (int step = 0; step < 2000; step++) {
          float loss;
          mlp_forward(net, X, 4);
          mlp_backward(net, y, &loss);
          mlp_sgd_step(net, 0.5f, 0.9f, 0.0f);
      }
      const float *p = mlp_predict(net, X, 4); // 4 x 2 class probabilities
      for (int i = 0; i < 4; i++) printf("%d xor %d = %d\n",
          (int)X[2*i], (int)X[2*i+1], p[2*i+1] > p[2*i]);
      mlp_free(net);

   CONFIGURATION (define before including; the allocation and feature
   macros matter in the implementation file)
      MLP_STATIC           every function is static (private to one file)
      MLP_SHARED           building or using a shared library: public
                           functions are exported (dllexport / default
                           visibility) by the implementation file and, on
                           Windows, imported (dllimport) elsewhere
      MLPDEF               the declaration prefix of every public function,
                           when neither of the above suits (default: extern)
      MLP_MALLOC(sz)       allocation; define both or neither (default:
      MLP_FREE(p)          malloc and free)
      MLP_ASSERT(x)        checks of the library's own invariants, never of
                           your data (default: assert from assert.h)
      MLP_MAX_ALLOC        largest single allocation in bytes (default 256 GiB
                           on 64-bit hosts); larger requests fail cleanly
      MLP_NO_STDIO         leave out the functions that take a file path
      MLP_INFLATE(dst, cap, src, len)
                           a raw deflate decoder, which lets the IDX loaders
                           read gzip-compressed files (MNIST's own form):
                           int in, int out, the bytes written or negative
                           when the stream is corrupt or needs more than
                           cap (src holds the stream and the 8 bytes of
                           the gzip trailer after it). stb_image's fits:
                           #define MLP_INFLATE(d, c, s, n) \
                               stbi_zlib_decode_noheader_buffer(d, c, s, n)
                           (with stb_image.h included before mlp.h)
      MLP_NO_SIMD          scalar kernels only (no intrinsics compiled in)
      MLP_NO_THREADS       no thread pool: one thread whatever is asked
      MLP_NO_HUGE_PAGES    on Linux, do not ask for 2 MiB pages (madvise) for
                           the data sets and IDX arrays the library allocates
      environment MLP_ISA  scalar|sse2|avx2|avx512|neon|wasm128: the kernels a network
                           uses when the program does not choose (mlp_set_isa)

   ERRORS
      One convention everywhere: a function that can fail returns int, 0
      (MLP_OK) on success and a negative MLP_E* code on failure, or a
      pointer, NULL on failure. mlp_error() then returns a short message
      saying what went wrong, e.g. "t10k-labels-idx1-ubyte: label 11 at index
      3 is out of range". It is the message of the most recent failure in
      the calling thread: read it right after a call fails (a successful call
      does not clear it). Sizes come back through out-parameters
      (mlp_save_memory). Accessors and pure functions (mlp_input_width,
      mlp_param_count, mlp_get_input, mlp_mat_view, mlp_lr_at, ...) cannot
      fail: on NULL or a bad shape they return a neutral value (0, the
      defaults, an empty matrix) instead of crashing. The library never
      prints, never calls exit(), and never aborts on bad data; MLP_ASSERT
      guards only its own invariants.

   DATA LAYOUT
      Matrices are row-major float (mlp_mat: element (i, j) at data[i *
      stride + j]). A batch X is B rows of n_in floats. A dense layer maps x
      (1 x n_in) to z = x W + b with W stored n_in x n_out (row i holds the
      weights leaving input i), so column j of W is the "filter" of output
      unit j. Labels are ints in [0, n_out).

   THREADS AND KERNELS
      A network picks its kernels once, when created (the best this CPU has,
      or MLP_ISA, or mlp_set_isa): one table of functions for every pass
      with a vector version (matrix products, ReLU, optimizer updates,
      batchnorm, sums of rows, the augmentation blur), the same table
      whatever -march the program was compiled with.
      mlp_set_threads(net, n) gives it n threads; results are
      bit-identical for every thread count. Inference on a batch of at
      least 16 rows per thread (mlp_forward, mlp_predict, mlp_evaluate, the
      network not training) gives each thread its own rows for the whole
      pass. mlp_train_epoch runs each batch (gather, forward, backward,
      update) as one job of the threads, each computing its own columns of
      every hidden layer (or, for a layer whose inputs make at least one K
      block per thread, its own rows of the weights), when the network has no dropout
      and neither clip_norm nor reduce is set; otherwise threads share each
      matrix product. A product's K dimension is summed in blocks of equal
      size (at most 256), which fixes its rounding. On Linux the rows of a
      data set sit on 2 MiB pages where the system allows (madvise; see
      MLP_NO_HUGE_PAGES). At batch 1 or 2 a product skips the weight rows whose input
      is exactly 0 (most pixels of a digit, about half of a ReLU layer's
      outputs): the same sums, except that an infinite or NaN weight in
      such a row no longer reaches the output.

   DISTRIBUTED TRAINING (data parallel; examples/train_mpi.c does it with MPI)
      The library never includes mpi.h: you give mlp_train_epoch a function
      that sums an array of floats over all processes, and each process
      trains on its shard of the data.
         mlp_dataset all, part;          // every process, the same data
         mlp_dataset_load(&all, images, labels);
         mlp_dataset_shard(&all, &part, rank, n_ranks);
         cfg.reduce = sum_over_ranks;    // e.g. MPI_Allreduce(MPI_IN_PLACE,
         cfg.reduce_user = &comm;        //   buf, n, MPI_FLOAT, MPI_SUM, comm)
         mlp_train_epoch(net, &part, &cfg, epoch, &stats);
      Every process draws the same shuffle of the whole set (seed, epoch),
      so the global batches are one process's; each computes the gradient
      of the rows of each batch that its shard holds, scaled by the global
      batch size (mlp_backward_slice), and the reduce call sums it, with the
      batch's loss, accuracy and batchnorm running statistics, in one call.
      Every process then takes the same optimizer step on the same numbers,
      so the networks stay equal without sending weights, and the result is
      the one-process run's up to the order of the gradient's sums.
      Batchnorm normalises each process's rows with their own statistics
      (the running averages are averaged), and dropout masks depend on the
      shard: with either, results differ from one process's. A nonzero
      return from reduce stops every process (MLP_EIO), as do a failure or a
      divergence in any one of them, so none is left waiting.
      Loops of your own: mlp_forward, mlp_backward_slice, mlp_gradients (the
      flat gradient, to sum in place), mlp_get_running_stats and
      mlp_set_running_stats, mlp_optimizer_step.

   PLATFORMS
      Any C99 or C++11 compiler builds it. The vector kernels and the thread
      pool need a little more, and are left out where it is missing:
      - x86-64 kernels (SSE2, AVX2+FMA, AVX-512, chosen at run time with
        cpuid): GCC, clang and MSVC. NEON: AArch64. WebAssembly SIMD128:
        Emscripten with -msimd128 (chosen at compile time). (clang-cl before
        clang 19 hides AVX intrinsics unless built with /arch:AVX512 or
        -mavx512f -mavx2 -mfma; not tested here.)
        32-bit x86 and Arm, s390x and other CPUs run the scalar kernels.
      - threads: POSIX threads (Linux, the BSDs, macOS) or Win32 threads
        (Windows: MinGW-w64, MSVC), with GCC/clang or MSVC atomics; other
        compilers (tcc) run one thread.
      - files are read and written byte by byte in one byte order (model
        files little-endian, IDX big-endian), so they move between hosts of
        either byte order.
      - on Windows, the implementation file includes <windows.h>.

   LIMITS (and why)
      MLP_MAX_LAYERS 64 dense layers, widths up to MLP_MAX_WIDTH (1<<20),
      batches up to MLP_MAX_BATCH, MLP_MAX_THREADS threads: bounds that keep
      every size computation far from overflow. IDX files hold at most
      MLP_IDX_MAX_DIMS dimensions and MLP_IDX_MAX_ELEMS elements.

   API (declarations below, each with what it does)
      errors:   mlp_error, mlp_version
      rng:      mlp_rng_seed, mlp_rng_u32, mlp_rng_float, mlp_rng_below
      matrices: mlp_mat_create, mlp_mat_free, mlp_mat_view, mlp_mat_rows,
                mlp_mat_row, mlp_mat_fill, mlp_mat_copy, mlp_mat_clone
      kernels:  mlp_isa_best, mlp_isa_supported, mlp_isa_name, mlp_isa_from_name
      gemm:     mlp_gemm (C = alpha op(A) op(B) + beta C), mlp_gemm_isa,
                mlp_gemm_net, mlp_gemm_ref
      network:  mlp_create, mlp_create_spec, mlp_parse_spec, mlp_free,
                mlp_clone, mlp_copy_weights, mlp_init_weights, mlp_add_dropout,
                mlp_add_batchnorm, mlp_set_training, mlp_set_isa, mlp_get_isa,
                mlp_set_threads, mlp_get_threads
      describe: mlp_input_width, mlp_output_width, mlp_param_count,
                mlp_dense_count, mlp_dense_weights, mlp_get_input, mlp_set_input,
                mlp_set_input_columns, mlp_get_input_columns,
                mlp_set_class_names, mlp_class_name
      compute:  mlp_forward, mlp_backward, mlp_sgd_step, mlp_optimizer_step,
                mlp_predict, mlp_predict_mat, mlp_loss_eval
      distributed: mlp_backward_slice, mlp_gradients, mlp_get_running_stats,
                mlp_set_running_stats, mlp_dataset_shard
      training: mlp_train_defaults, mlp_lr_at, mlp_train_epoch, mlp_evaluate
      command line: mlp_cli_defaults, mlp_cli_flag, mlp_cli_help, mlp_cli_create,
                mlp_cli_export
      data:     mlp_idx_load, mlp_idx_load_memory, mlp_idx_free,
                mlp_dataset_from_idx, mlp_dataset_from_arrays, mlp_dataset_load,
                mlp_dataset_parse_csv, mlp_dataset_load_csv, mlp_csv_find_column,
                mlp_dataset_split, mlp_dataset_standardize, mlp_dataset_free,
                mlp_dataset_check, mlp_dataset_inputs
      models:   mlp_save, mlp_load, mlp_save_memory, mlp_load_memory, mlp_crc32,
                mlp_checkpoint_save, mlp_checkpoint_load, mlp_checkpoint_save_memory,
                mlp_checkpoint_load_memory, mlp_checkpoint_save_state,
                mlp_checkpoint_load_state, mlp_checkpoint_save_state_memory,
                mlp_checkpoint_load_state_memory, mlp_eval_merge,
                mlp_export_c, mlp_export_c_int8, mlp_quantize_int8
      images:   mlp_digit_preprocess, mlp_digit_preprocess_ex, mlp_number_preprocess,
                mlp_normalize_input, mlp_augment_dataset

   VERSION HISTORY
      0.1  (2026-11-21) first release: dense MLPs, SGD, IDX loader, SIMD GEMM
                        with run-time dispatch and threads, model files and
                        checkpoints, digit preprocessing, Adam/Nesterov,
                        dropout, augmentation
      0.2  (2026-11-22) batch normalisation (model record kind 4; files
                        without it read as before)
      0.3  (2026-12-02) the contract: mlp_net is opaque (mlp_get_input,
                        mlp_set_input, mlp_clone, mlp_copy_weights,
                        mlp_dense_weights, mlp_param_count, mlp_gemm_net);
                        mlp_mat has strides and views; one failure
                        convention (mlp_gemm and mlp_gemm_ref return int,
                        mlp_isa_from_name, mlp_loss_eval, mlp_save_memory and
                        mlp_checkpoint_save_memory answer through
                        out-parameters); mlp_init renamed mlp_init_weights;
                        MLP_REALLOC dropped; MLP_SHARED, overridable MLPDEF,
                        version macros; one kernel table per network; a
                        zeroed mlp_train_config means the defaults
      0.3.1 (2026-12-02) platforms: Win32 threads, x86-64 kernels under
                        MSVC, CPU features read with cpuid/xgetbv, saves
                        replace files atomically on Windows (MoveFileEx);
                        tcc builds single-threaded; the *_save_memory calls
                        set *size to 0 when they fail
      0.3.2 (2026-12-02) speed: AVX2 kernels for batch-1 rows and products
                        at most 16 wide, the AVX2 GEMM reads an untransposed
                        A in place; inference on a large batch runs every
                        layer and the softmax on each thread's own rows in
                        one parallel region; threads share a product's rows
                        or columns by which copies less
      0.4.0 (2026-12-02) models out: mlp_export_c writes a network as a
                        standalone C header (static const weights,
                        batchnorm folded in, NAME_predict on raw inputs;
                        no libc at all with NAME_NO_LIBC); data in: the IDX
                        loaders read gzipped files through MLP_INFLATE;
                        mlp_dataset_from_arrays (copies or borrows);
                        reliability: mlp_train_epoch's divergence watch
                        (mlp_train_config.diverge_factor) stops a run whose
                        loss explodes or whose ReLU layer dies, though every
                        value is finite
      0.5.0 (2026-12-02) data in: CSV files (mlp_dataset_parse_csv,
                        mlp_dataset_load_csv, mlp_csv_find_column), class
                        names (mlp_dataset.class_names, mlp_set_class_names,
                        mlp_class_name), mlp_dataset_split,
                        mlp_dataset_standardize and per-column input
                        normalisation (mlp_set_input_columns); model records
                        kind 5 (input columns) and 6 (class names), which
                        0.4 readers refuse by name; mlp_export_c writes both;
                        the shared training flags (mlp_cli_*)
      0.6.0 (2026-12-03) checkpoints keep the training loop's state
                        (checkpoint version 2: mlp_train_state, the epoch's
                        statistics so far and early stopping's best
                        weights, loss and counters;
                        mlp_checkpoint_save_state/load_state[_memory],
                        mlp_eval_merge); version 1 still loads. WebAssembly:
                        MLP_ISA_WASM128, SIMD128 kernels under Emscripten
      0.6.1 (2026-12-03) speed: the AVX-512 GEMM reads A in place, plain
                        or transposed, as the AVX2 one does (it gathered
                        A's rows into panels)
      0.7.0 (2026-12-03) distributed training: mlp_train_config.reduce and
                        mlp_dataset_shard (mlp_dataset.shard_first and
                        shard_total), mlp_backward_slice, mlp_gradients,
                        mlp_get_running_stats, mlp_set_running_stats;
                        mlp_augment_dataset draws a shard's rows as the
                        whole set's
      0.8.0 (2026-12-03) speed: mlp_train_epoch runs a batch as one job of
                        its threads with barriers between layers, batchnorm
                        included (the same bits as before); weights,
                        gradients, optimizer state and workspace start on
                        64-byte lines; the AVX-512 update prefetches the
                        weights for writing; the batch-1 kernels skip
                        weight rows whose input is 0
      0.9.0 (2026-12-03) speed: a training step splits a hidden layer with
                        enough inputs among its threads by rows of the
                        weights (each thread's own update rows); K blocks of
                        equal size, so products deeper than 256 round
                        differently from 0.8; a product of at most 64 rows
                        with weights wider than 512 runs as its transpose
                        (the same bits); batchnorm's passes are kernels
                        (AVX-512); data sets and IDX arrays ask Linux for
                        huge pages (MLP_NO_HUGE_PAGES)
      0.9.1 (2026-12-03) speed, the same bits: the partial sums of a layer
                        split by its inputs and the bias gradients' column
                        sums are a kernel (add_rows: SSE2, AVX-512), not
                        scalar loops; the batch-1 product counts its input's
                        nonzeros in an integer
      0.9.2 (2026-12-03) speed, the same bits: a training step updates each
                        block of a hidden layer's weights as soon as its
                        gradient is computed, while it is in the cache; the
                        softmax computes each exponential once; whole panels
                        of a product's right operand are packed with inlined
                        copies
      0.9.3 (2026-12-04) speed, the same bits: products of at most 256 rows
                        read an untransposed right operand in place (AVX-512,
                        AVX2), no packing; AVX-512 packs a transposed one with
                        8 x 8 register transposes, not gathers; a training
                        step shares a hidden layer's forward pass by rows of
                        the batch when only activations follow it, and the
                        head (output product, loss) by rows

   LICENSE: MIT, see the end of the file.
*/

#ifndef MLP_H_INCLUDED
#define MLP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifndef MLPDEF
#if defined(MLP_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define MLPDEF static __attribute__((unused)) /* a program may use only a few */
#elif defined(MLP_STATIC)
#define MLPDEF static
#elif defined(MLP_SHARED) && defined(_WIN32) && defined(MLP_IMPLEMENTATION)
#define MLPDEF __declspec(dllexport)
#elif defined(MLP_SHARED) && defined(_WIN32)
#define MLPDEF __declspec(dllimport)
#elif defined(MLP_SHARED) && (defined(__GNUC__) || defined(__clang__))
#define MLPDEF extern __attribute__((visibility("default")))
#else
#define MLPDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MLP_VERSION_MAJOR 0
#define MLP_VERSION_MINOR 9
#define MLP_VERSION_PATCH 3

#define MLP_MAX_LAYERS    64
#define MLP_MAX_THREADS   64
#define MLP_MAX_BATCH     (1 << 20)
#define MLP_MAX_WIDTH     (1 << 20)
#define MLP_IDX_MAX_DIMS  8
#define MLP_IDX_MAX_ELEMS ((size_t)1 << 31)

enum {
    MLP_OK = 0,
    MLP_EARG = -1,     /* bad argument (NULL, size out of range, mismatch) */
    MLP_ENOMEM = -2,   /* allocation failed or size would overflow */
    MLP_EIO = -3,      /* cannot open / read / write a file */
    MLP_EFORMAT = -4,  /* file contents are malformed */
    MLP_ENUMERIC = -5, /* NaN or infinity appeared */
    MLP_EINTR = -6     /* the on_batch callback asked training to stop */
};

/* The reason for the most recent failure in this thread ("" if none yet):
   read it right after a call returns a negative code or NULL. */
MLPDEF const char *mlp_error(void);
/* "MAJOR.MINOR.PATCH" of the implementation compiled in. */
MLPDEF const char *mlp_version(void);

/* ---- random numbers: PCG32, our own, so results do not depend on rand() -- */
typedef struct mlp_rng { uint64_t state, inc; } mlp_rng;
MLPDEF void     mlp_rng_seed(mlp_rng *rng, uint64_t seed, uint64_t stream);
MLPDEF uint32_t mlp_rng_u32(mlp_rng *rng);
MLPDEF float    mlp_rng_float(mlp_rng *rng);            /* uniform in [0,1) */
MLPDEF uint32_t mlp_rng_below(mlp_rng *rng, uint32_t n); /* uniform in [0,n) */

/* ---- matrices ------------------------------------------------------------ */
/* rows x cols floats, element (i, j) at data[i * stride + j]. A matrix
   either owns its data (mlp_mat_create, mlp_mat_clone: release with
   mlp_mat_free) or is a view of someone else's (mlp_mat_view, mlp_mat_rows,
   and what the library hands out: never freed, valid as long as its owner). */
typedef struct mlp_mat { int rows, cols, stride; float *data; } mlp_mat;
MLPDEF int     mlp_mat_create(mlp_mat *m, int rows, int cols); /* zero-filled */
MLPDEF void    mlp_mat_free(mlp_mat *m);
MLPDEF mlp_mat mlp_mat_view(float *data, int rows, int cols, int stride);
/* rows first .. first + count - 1 of m, as a view (clamped to m's rows) */
MLPDEF mlp_mat mlp_mat_rows(mlp_mat m, int first, int count);
MLPDEF float  *mlp_mat_row(mlp_mat m, int i);                  /* NULL if out of range */
MLPDEF void    mlp_mat_fill(mlp_mat *m, float value);
MLPDEF int     mlp_mat_copy(mlp_mat *dst, const mlp_mat *src);  /* same shape, any strides */
MLPDEF int     mlp_mat_clone(mlp_mat *dst, const mlp_mat *src); /* a new matrix that owns a copy */

/* Instruction sets of the kernels (matrix products and every other pass
   with a vector version). AUTO picks the best one this CPU has, or the one
   the environment variable MLP_ISA names. */
typedef enum { MLP_ISA_AUTO, MLP_ISA_SCALAR, MLP_ISA_SSE2, MLP_ISA_AVX2,
               MLP_ISA_AVX512, MLP_ISA_NEON, MLP_ISA_WASM128 } mlp_isa;
MLPDEF mlp_isa     mlp_isa_best(void);
MLPDEF int         mlp_isa_supported(mlp_isa isa);
MLPDEF const char *mlp_isa_name(mlp_isa isa);                 /* "unknown" if not one */
MLPDEF int         mlp_isa_from_name(const char *name, mlp_isa *isa); /* MLP_EARG if unknown */

/* C (M x N) = alpha * op(A) * op(B) + beta * C, row-major, op = transpose
   when trans_a / trans_b is nonzero. When beta is 0, C is not read. Bad
   shapes or NULL matrices leave C alone and fail with MLP_EARG. */
MLPDEF int mlp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);
/* The same with a chosen kernel; fails if isa is not available here. */
MLPDEF int mlp_gemm_isa(mlp_isa isa, int trans_a, int trans_b, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);
/* The plain triple loop: slow, obviously right, kept as the test oracle. */
MLPDEF int mlp_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);

/* ---- network ------------------------------------------------------------- */
typedef enum { MLP_ACT_IDENTITY, MLP_ACT_RELU, MLP_ACT_SIGMOID, MLP_ACT_TANH } mlp_act;
typedef enum { MLP_LOSS_CE, MLP_LOSS_MSE } mlp_loss;
typedef enum {
    MLP_INIT_AUTO,          /* He for ReLU layers, Glorot otherwise */
    MLP_INIT_UNIFORM_FANIN, /* U(-1/sqrt(n_in), 1/sqrt(n_in)) */
    MLP_INIT_GLOROT,        /* U(-sqrt(6/(n_in+n_out)), +sqrt(6/(n_in+n_out))) */
    MLP_INIT_HE             /* U(-sqrt(6/n_in), +sqrt(6/n_in)): variance 2/n_in */
} mlp_init_kind;
/* Opaque: create with mlp_create*, mlp_load or mlp_clone, release with
   mlp_free; everything about it is read and set through the calls below. */
typedef struct mlp_net mlp_net;

/* What the network's input is, stored in model files: network input =
   raw value * scale + offset (raw MNIST pixels are 0..255, so scale 1/255);
   image_w x image_h = the input width for image models, 0 x 0 otherwise. */
typedef struct mlp_input { float scale, offset; int image_w, image_h; } mlp_input;

/* sizes: n_sizes widths (input first); acts: n_sizes-1 activations, one after
   each dense layer (usually MLP_ACT_IDENTITY last). Weights are initialised
   with MLP_INIT_AUTO from seed. */
MLPDEF mlp_net *mlp_create(int n_sizes, const int *sizes, const mlp_act *acts,
                           mlp_loss loss, uint64_t seed);
/* spec "784-256-128-10": hidden layers use hidden_act, the output identity. */
MLPDEF mlp_net *mlp_create_spec(const char *spec, mlp_act hidden_act,
                                mlp_loss loss, uint64_t seed);
/* Parses "784-256-10" into sizes; returns the count or a negative code. */
MLPDEF int      mlp_parse_spec(const char *spec, int *sizes, int max_sizes);
MLPDEF void     mlp_free(mlp_net *net);
/* A new network with net's layers, weights, statistics, input description
   and kernels (not its optimizer state; one thread). It only reads net:
   threads may clone one network at once, one clone each to predict with. */
MLPDEF mlp_net *mlp_clone(const mlp_net *net);
/* dst's weights and batchnorm statistics = src's: what inference uses, e.g.
   to keep the best epoch's model while training. The layers must match:
   kinds, widths and activations. */
MLPDEF int      mlp_copy_weights(mlp_net *dst, const mlp_net *src);
/* Draws every weight afresh (biases 0, batchnorm scale 1 and shift 0). */
MLPDEF int      mlp_init_weights(mlp_net *net, mlp_init_kind kind, uint64_t seed);
/* Inverted dropout on the input (input_rate) and after every hidden
   activation (hidden_rate); 0 leaves a place without. Active only in
   training mode, which mlp_train_epoch switches on for its pass. */
MLPDEF int      mlp_add_dropout(mlp_net *net, float input_rate, float hidden_rate);
/* Batch normalisation between every hidden dense layer and its activation:
   in training mode each unit is normalised with the batch's mean and
   variance, then scaled and shifted by learned gamma (1) and beta (0); the
   running averages (momentum 0.1, eps 1e-5) replace the batch statistics
   in inference. Call before training: it re-lays the parameters (keeping
   the dense weights) and drops any optimizer state. */
MLPDEF int      mlp_add_batchnorm(mlp_net *net);
MLPDEF void     mlp_set_training(mlp_net *net, int training);
MLPDEF int      mlp_set_isa(mlp_net *net, mlp_isa isa); /* choose the kernels */
MLPDEF mlp_isa  mlp_get_isa(const mlp_net *net);
/* Threads for this network's work (default 1, at most MLP_MAX_THREADS).
   Results are bit-identical for every thread count. Without a thread
   pool (see PLATFORMS, or MLP_NO_THREADS) the count is accepted and 1
   thread is used. */
MLPDEF int      mlp_set_threads(mlp_net *net, int n_threads);
MLPDEF int      mlp_get_threads(const mlp_net *net);
MLPDEF int      mlp_input_width(const mlp_net *net);
MLPDEF int      mlp_output_width(const mlp_net *net);
MLPDEF size_t   mlp_param_count(const mlp_net *net);  /* trained numbers: weights, biases, ... */
MLPDEF int      mlp_dense_count(const mlp_net *net);  /* dense layers, input side first */
/* Read-only views of dense layer i's weights (n_in x n_out) and biases (1 x
   n_out), valid until the network is changed or freed. */
MLPDEF int      mlp_dense_weights(const mlp_net *net, int i, mlp_mat *W, mlp_mat *b);
MLPDEF mlp_input mlp_get_input(const mlp_net *net);
/* Fails unless scale is finite and nonzero, offset finite, and image_w x
   image_h is 0 x 0 or the input width. */
MLPDEF int      mlp_set_input(mlp_net *net, const mlp_input *input);
/* Per-column normalisation after the one above (data whose columns are
   different quantities, e.g. CSV): input j = (raw_j * scale + offset) *
   scale[j] + offset[j], both arrays input-width long (copied; every scale
   finite and nonzero, every offset finite). NULL, NULL removes them.
   Stored in model files. mlp_dataset_standardize sets them for you. */
MLPDEF int      mlp_set_input_columns(mlp_net *net, const float *scale, const float *offset);
/* 1 and the arrays copied out (when not NULL) if the network has columns,
   else 0. */
MLPDEF int      mlp_get_input_columns(const mlp_net *net, float *scale, float *offset);
/* Names of the output classes, e.g. the CSV's label names, stored in model
   files: output-width names (copied; 1..MLP_MAX_NAME bytes, none below
   0x20 or 0x7F, all different). NULL removes them. */
#define MLP_MAX_NAME 255
MLPDEF int      mlp_set_class_names(mlp_net *net, const char *const *names);
/* Class k's name, or NULL when the network has none (or k is out of range). */
MLPDEF const char *mlp_class_name(const mlp_net *net, int k);
/* mlp_gemm on the network's kernels and threads. */
MLPDEF int      mlp_gemm_net(mlp_net *net, int trans_a, int trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc);

/* Forward pass over B rows of X; returns the B x n_out outputs (logits for
   MLP_LOSS_CE), valid until the next call, or NULL on error. The network
   keeps X (it does not copy it) for mlp_backward: X must stay unchanged
   until then. */
MLPDEF const float *mlp_forward(mlp_net *net, const float *X, int B);
/* Loss of the last forward pass against labels, and the gradient of the
   batch-mean loss with respect to every parameter (overwrites net->grads). */
MLPDEF int mlp_backward(mlp_net *net, const int *labels, float *loss);
/* mlp_backward for one process's slice of a batch of global_batch rows
   spread over several (DISTRIBUTED TRAINING): the gradient of the slice's
   summed loss / global_batch, so that the processes' gradients add up to
   the global batch's. *loss_sum (optional) gets the slice's summed loss. */
MLPDEF int mlp_backward_slice(mlp_net *net, const int *labels, int global_batch, float *loss_sum);
/* The gradient the last backward pass wrote: all mlp_param_count numbers
   in one block (to sum across processes in place), until the network is
   changed or freed; *n (optional) gets the count. NULL for a NULL net. */
MLPDEF float *mlp_gradients(mlp_net *net, size_t *n);
/* Batchnorm's running means and variances, every layer's in one array:
   returns how many (0 without batchnorm) and copies them to stats unless
   it is NULL. Set puts such an array back (finite; variances >= 0). */
MLPDEF size_t mlp_get_running_stats(const mlp_net *net, float *stats);
MLPDEF int    mlp_set_running_stats(mlp_net *net, const float *stats);
/* SGD with momentum and L2 weight decay (weights only, not biases):
   v = momentum v + dW + weight_decay W;  W -= lr v. */
MLPDEF int mlp_sgd_step(mlp_net *net, float lr, float momentum, float weight_decay);
/* One step of the optimizer cfg names (SGD, Nesterov, Adam, AdamW), with
   gradient clipping and the max-norm constraint if cfg asks for them. */
struct mlp_train_config;
MLPDEF int mlp_optimizer_step(mlp_net *net, const struct mlp_train_config *cfg, float lr);
/* Class probabilities (softmax of the logits for CE, raw outputs for MSE),
   B x n_out, valid until the next call; NULL on error. */
MLPDEF const float *mlp_predict(mlp_net *net, const float *X, int B);
/* The same over the rows of X (stride = cols = the input width): *P
   becomes a view of the B x n_out probabilities. */
MLPDEF int mlp_predict_mat(mlp_net *net, const mlp_mat *X, mlp_mat *P);
/* Batch-mean loss of outputs Y (B x n) against labels into *value; writes
   the gradient dL/dY to dY when dY is not NULL. MLP_EARG on a label out of
   0..n-1. */
MLPDEF int mlp_loss_eval(mlp_loss loss, const float *Y, const int *labels,
                         int B, int n, float *dY, float *value);

/* ---- data ---------------------------------------------------------------- */
enum { MLP_IDX_U8 = 0x08, MLP_IDX_S8 = 0x09, MLP_IDX_I16 = 0x0B,
       MLP_IDX_I32 = 0x0C, MLP_IDX_F32 = 0x0D, MLP_IDX_F64 = 0x0E };

typedef struct mlp_idx {
    int type;                    /* MLP_IDX_* element type of the file */
    int ndims;
    uint32_t dims[MLP_IDX_MAX_DIMS];
    size_t count;                /* product of dims */
    float *data;                 /* count values converted to float */
} mlp_idx;

/* name is used in error messages only (may be NULL). */
MLPDEF int  mlp_idx_load_memory(mlp_idx *idx, const void *bytes, size_t n_bytes, const char *name);
#ifndef MLP_NO_STDIO
MLPDEF int  mlp_idx_load(mlp_idx *idx, const char *path);
#endif
MLPDEF void mlp_idx_free(mlp_idx *idx);

typedef struct mlp_dataset {
    int n, dim, n_classes;   /* n_classes = largest label + 1 */
    int image_w, image_h;    /* for n x h x w images, else 0 */
    float scale;             /* x = raw value * scale (1/255 for unsigned bytes) */
    float *x;                /* n x dim; unsigned-byte images scaled to [0,1] */
    int *y;                  /* n labels */
    /* n_classes names (CSV labels that are words), or NULL. They live in y's
       allocation: mlp_dataset_free frees them with y. A data set you fill
       in yourself needs class_names NULL (zero the struct) before it is
       passed as classes_of. */
    char **class_names;
    /* A shard (mlp_dataset_shard): row i is sample shard_first + i of a
       whole set of shard_total samples. 0 and 0 for a whole set. */
    int shard_first, shard_total;
} mlp_dataset;

/* Takes images (n x ...) and labels (n) IDX data; checks counts and labels. */
MLPDEF int  mlp_dataset_from_idx(mlp_dataset *ds, const mlp_idx *images, const mlp_idx *labels);
/* A data set over your own n x dim inputs (row-major, the values the network
   takes: no scaling) and n class labels (0..65535), all checked (finite
   inputs, labels in range). MLP_DATASET_COPY: ds gets its own copies (free
   them with mlp_dataset_free; yours may go at once). MLP_DATASET_BORROW: ds
   is a view of your arrays, which must outlive it unchanged; it owns
   nothing, so never pass it to mlp_dataset_free (it would free your arrays). */
#define MLP_DATASET_COPY   0
#define MLP_DATASET_BORROW 1
MLPDEF int  mlp_dataset_from_arrays(mlp_dataset *ds, const float *x, const int *y, int n, int dim, int ownership);
#ifndef MLP_NO_STDIO
MLPDEF int  mlp_dataset_load(mlp_dataset *ds, const char *images_path, const char *labels_path);
#endif
MLPDEF void mlp_dataset_free(mlp_dataset *ds);
/* A CSV file of numbers, one sample per line, its label in label_column
   (0-based; MLP_CSV_LAST: the last column; MLP_CSV_NONE: no labels, every
   column an input, y all 0 and n_classes 0). Labels are class indices when
   every one is an integer 0..65535, otherwise names: the distinct names in
   byte order give the indices, and ds->class_names holds them. classes_of
   (optional, e.g. the training set when loading its test set) fixes the
   mapping: its names, or its n_classes. has_header: the first line names
   the columns. The format, strictly: commas; \n or \r\n line ends; fields
   may be "quoted" ("" for a quote) and have spaces around them; inputs are
   decimal numbers (no nan, inf, hex or empty fields: missing values are
   not supported); every line as many fields as the first; at most
   MLP_CSV_MAX_LINE bytes a line. Inputs are kept as written (ds->scale 1).
   Errors say where: "iris.csv: line 7, column 3: \"abc\" is not a number"
   (lines and columns counted from 1). name is for messages (may be NULL). */
#define MLP_CSV_LAST (-1)
#define MLP_CSV_NONE (-2)
#define MLP_CSV_MAX_LINE (1 << 20)
MLPDEF int  mlp_dataset_parse_csv(mlp_dataset *ds, const char *text, size_t len, const char *name,
                                  int label_column, int has_header, const mlp_dataset *classes_of);
#ifndef MLP_NO_STDIO
MLPDEF int  mlp_dataset_load_csv(mlp_dataset *ds, const char *path, int label_column, int has_header,
                                 const mlp_dataset *classes_of);
/* The 0-based index of column_name in the CSV file's first line. */
MLPDEF int  mlp_csv_find_column(const char *path, const char *column_name);
#endif
/* Moves a seeded random n_held_out samples of ds to its end and makes
   held_out a view of them; ds keeps the rest. held_out shares ds's memory
   (and class names): free ds only, never held_out. */
MLPDEF int  mlp_dataset_split(mlp_dataset *ds, mlp_dataset *held_out, int n_held_out, uint64_t seed);
/* Process rank's share of all (0 <= rank < n_ranks): the rank-th of n_ranks
   runs of consecutive rows, as equal as can be, as a view that shares
   all's memory (free all only, never part), with its place in the whole
   (shard_first, shard_total). Training with mlp_train_config.reduce takes
   it as part of the whole; mlp_augment_dataset draws its rows' distortions
   as it would the whole set's. Split off a validation set first: a split
   shard is a shard no more. */
MLPDEF int  mlp_dataset_shard(const mlp_dataset *all, mlp_dataset *part, int rank, int n_ranks);
/* Standardises every input column of train to mean 0 and standard
   deviation 1 (a constant column: mean 0 only), records that in net
   (mlp_set_input_columns) so inference does the same to raw data, and
   applies train's statistics to other too (optional, e.g. the test set).
   The data sets' inputs are changed in place: they must own them. */
MLPDEF int  mlp_dataset_standardize(mlp_net *net, mlp_dataset *train, mlp_dataset *other);
/* The inputs as an n x dim matrix (a view). */
MLPDEF mlp_mat mlp_dataset_inputs(const mlp_dataset *ds);
/* Checks that the data fits the net: input width and label range. */
MLPDEF int  mlp_dataset_check(const mlp_net *net, const mlp_dataset *ds);

/* ---- model files --------------------------------------------------------- */
/* A versioned, little-endian, CRC-checked format (documented byte by byte in
   the implementation section "model files"). The loader trusts nothing. */
/* *size = the bytes the model takes; with buf, they are written there (cap
   must be at least *size: MLP_EARG otherwise, nothing written). */
MLPDEF int      mlp_save_memory(const mlp_net *net, void *buf, size_t cap, size_t *size);
MLPDEF mlp_net *mlp_load_memory(const void *buf, size_t size);
#ifndef MLP_NO_STDIO
MLPDEF int      mlp_save(const mlp_net *net, const char *path); /* atomic: PATH.tmp, fsync, rename */
MLPDEF mlp_net *mlp_load(const char *path);
/* A standalone C header for firmware and programs without mlp.h: the
   weights as static const floats (batchnorm folded in) and
   int NAME_predict(const float *raw, float *probs), which takes the raw
   inputs, applies the input normalisation, writes the probabilities when
   probs is not NULL and returns the class. name: a C identifier (NULL:
   "mlp_model"). Written atomically, like mlp_save. */
MLPDEF int      mlp_export_c(const mlp_net *net, const char *path, const char *name);
/* The same with every dense weight an 8-bit integer (a quarter of the
   size): each output unit's weights (batchnorm folded in) scaled by their
   largest magnitude / 127 and rounded; the biases stay floats. */
MLPDEF int      mlp_export_c_int8(const mlp_net *net, const char *path, const char *name);
#endif
/* Rounds net's dense weights to what mlp_export_c_int8 keeps of them, so
   mlp_evaluate on it (a clone: this cannot be undone) tells the int8
   model's accuracy. */
MLPDEF int      mlp_quantize_int8(mlp_net *net);
MLPDEF uint32_t mlp_crc32(const void *data, size_t n);

/* ---- image preprocessing ------------------------------------------------- */
#define MLP_DIGIT_SIDE 28
#define MLP_MAX_IMAGE_SIDE 16384
#define MLP_MAX_DIGITS 64
/* Turns a w x h picture of a digit (channels 1: gray, 2: gray + alpha;
   values 0..1, row major) into the 28 x 28 MNIST-style input, values 0..255
   like MNIST's raw bytes. Photos, scans and drawings are all fine: polarity
   is detected, alpha composited, uneven lighting and shadows divided out,
   noise filtered, specks and stray marks dropped, bold or hairline strokes
   redrawn at MNIST's pen width, then the digit is framed as MNIST did
   (longer side 20 pixels, centre of mass at the centre). Fails with a
   message (MLP_EFORMAT) on a blank picture ("no digit found ..."), one with
   only specks or a line, and a digit cut by the picture's edge. */
MLPDEF int mlp_digit_preprocess(const float *pixels, int w, int h, int channels, float *out);

typedef struct mlp_digit_box { int x, y, w, h; } mlp_digit_box; /* in the picture's pixels */
/* Called with each stage's image (w x h floats, 0 paper .. 1 ink; the
   first two stages, named "(gray)", are the picture's gray levels) so a
   program can show why a digit was misread; stage names say what the image
   is. The image is valid during the call only. */
typedef void (*mlp_stage_fn)(void *user, const char *stage, const float *img, int w, int h);
/* mlp_digit_preprocess, plus where the digit is (box, optional) and every
   stage shown to show (optional). */
MLPDEF int mlp_digit_preprocess_ex(const float *pixels, int w, int h, int channels, float *out,
                                   mlp_digit_box *box, mlp_stage_fn show, void *user);
/* A whole number: the digits of a picture written in a row, left to right,
   each preprocessed like mlp_digit_preprocess into out + i * 784 (out holds
   max_digits * 784 floats) with its box in boxes[i] (optional). Returns the
   number of digits (1..max_digits, max_digits <= MLP_MAX_DIGITS) or a
   negative code. */
MLPDEF int mlp_number_preprocess(const float *pixels, int w, int h, int channels, float *out,
                                 mlp_digit_box *boxes, int max_digits, mlp_stage_fn show, void *user);
/* x = raw * scale + offset (mlp_get_input) over the input width */
MLPDEF int mlp_normalize_input(const mlp_net *net, const float *raw, float *x);

/* Data augmentation: each image moved, rotated, scaled and sheared by a
   random affine map and (alpha > 0) elastically distorted (Simard 2003: a
   random displacement field smoothed by a Gaussian of sigma, times alpha),
   resampled bilinearly. Ranges are +-: shift in pixels, rotate in degrees,
   scale and shear as fractions. */
typedef struct mlp_augment {
    float shift, rotate, scale, shear;
    float elastic_alpha, elastic_sigma;
    /* What preprocessing leaves of a photo or a font: strokes thickened or
       thinned by up to `thickness` pixels (a morphological step with a
       plus-shaped pen, fractions blended), a Gaussian blur of sigma up to
       `blur` pixels (peak kept), and with probability `specks` one to three
       stray specks. */
    float thickness, blur, specks;
} mlp_augment;
/* Writes an augmented copy of every image of src (image_w x image_h) to
   out (src->n x src->dim floats). Image i's randomness comes from (seed,
   epoch, i), so the result does not depend on the thread count; net's
   threads do the work (net may be NULL: one thread). */
MLPDEF int mlp_augment_dataset(mlp_net *net, const mlp_dataset *src, const mlp_augment *aug,
                               uint64_t seed, int epoch, float *out);

/* ---- training ------------------------------------------------------------ */
typedef struct mlp_batch_info {
    int epoch, batch, n_batches, samples_done;
    float loss;                /* this batch */
} mlp_batch_info;

typedef enum { MLP_OPT_SGD, MLP_OPT_NESTEROV, MLP_OPT_ADAM, MLP_OPT_ADAMW } mlp_optimizer;
typedef enum { MLP_SCHEDULE_STEP, MLP_SCHEDULE_EXP, MLP_SCHEDULE_COSINE } mlp_schedule;

/* Start from mlp_train_defaults(), or from a zeroed struct: there the
   fields whose zero means nothing (batch, lr, lr_decay, lr_step, beta1,
   beta2, eps, lr_scale) take their defaults, and the rest keep the zero
   they say (momentum 0: plain SGD; seed 0 is a seed like any other). */
typedef struct mlp_train_config {
    int batch;                 /* mini-batch size (default 64) */
    float lr;                  /* learning rate (default 0.05) */
    mlp_optimizer optimizer;   /* default MLP_OPT_SGD */
    float momentum;            /* SGD momentum (default 0.9) */
    float beta1, beta2, eps;   /* Adam (defaults 0.9, 0.999, 1e-8) */
    float weight_decay;        /* L2 on weights (default 0); AdamW: decoupled */
    float clip_norm;           /* > 0: rescale the gradient to at most this global L2 norm */
    float max_norm;            /* > 0: after each step, cap the L2 norm of each unit's
                                  incoming weights (a column of W) at this */
    mlp_schedule schedule;     /* how the learning rate changes with the epoch: */
    float lr_decay;            /* STEP: times lr_decay every lr_step epochs (default 0.5 / 3);
                                  EXP: times lr_decay every epoch */
    int lr_step;
    int warmup_epochs;         /* COSINE: linear warm-up, then a cosine to 0 at ... */
    int total_epochs;          /* ... this epoch */
    float lr_scale;            /* a further factor (default 1), e.g. lowered on a plateau */
    uint64_t seed;             /* shuffling seed */
    int start_batch;           /* skip this many batches of the epoch (resuming a
                                  checkpoint taken mid-epoch; default 0) */
    /* optional: called after every batch (e.g. for a progress bar); a nonzero
       return stops training after this batch (mlp_train_epoch: MLP_EINTR) */
    int (*on_batch)(void *user, const mlp_batch_info *info);
    void *user;
    /* divergence watch: mlp_train_epoch stops with MLP_ENUMERIC when the
       running batch loss (a moving average) exceeds diverge_factor times
       the loss of knowing nothing (log(classes) for cross-entropy, 1 for
       the Euclidean loss), or when every unit of a ReLU layer (of 8 units
       or more) is inactive for a whole batch (of 8 or more): the network
       died. Either can happen while every value stays finite. Default 50;
       negative: off. */
    float diverge_factor;
    /* Data-parallel training over several processes (DISTRIBUTED TRAINING
       above); NULL: one process. The data set is this process's shard
       (mlp_dataset_shard; a whole set given to every process would count
       each row once per process). mlp_train_epoch calls reduce with n floats, the
       same n in every process, which it must replace by their element-wise
       sum over all the processes (MPI_Allreduce in place): once with one
       (whether any process failed to start the epoch), then once per
       batch. A nonzero return stops training with MLP_EIO. */
    int (*reduce)(void *user, float *values, size_t n);
    void *reduce_user;
} mlp_train_config;

typedef struct mlp_eval {
    double loss;               /* mean loss per sample */
    double accuracy;           /* fraction correct, 0..1 */
    int n, correct;
} mlp_eval;

MLPDEF mlp_train_config mlp_train_defaults(void);
/* Learning rate for epoch (0-based): lr * lr_scale * the schedule's factor:
   STEP lr_decay^floor(epoch / lr_step), EXP lr_decay^epoch, COSINE
   (epoch + 1) / (warmup + 1) during the warm-up, then
   0.5 (1 + cos(pi (epoch - warmup) / (total - warmup))). */
MLPDEF float mlp_lr_at(const mlp_train_config *cfg, int epoch);
/* One pass over ds in a fresh random order (a function of seed and epoch, so
   a run can be resumed at any epoch and batch). stats (optional) gets the
   running mean loss and accuracy over the batches this call trained. */
MLPDEF int mlp_train_epoch(mlp_net *net, const mlp_dataset *ds,
                           const mlp_train_config *cfg, int epoch, mlp_eval *stats);
/* Loss and accuracy over ds; confusion (optional, n_out x n_out ints, row =
   true label, column = prediction) is overwritten. */
MLPDEF int mlp_evaluate(mlp_net *net, const mlp_dataset *ds, int batch,
                        mlp_eval *out, int *confusion);

/* ---- command-line training ----------------------------------------------- */
/* The flags every training program of ours takes (examples/train_mnist.c,
   examples/train_csv.c), parsed in one place so they mean the same
   everywhere: --layers, --act, --loss, --init, --batchnorm, --dropout,
   --dropout-input, --epochs, --batch, --lr, --momentum, --weight-decay,
   --optimizer, --beta1, --beta2, --clip-norm, --max-norm, --diverge-factor,
   --schedule, --lr-decay, --lr-step, --warmup, --seed, --threads, --log,
   --out, --export-c, --export-c-int8, --export-name, --quiet. A program reads its own flags
   first and hands the rest to mlp_cli_flag. */
typedef struct mlp_cli {
    const char *layers;        /* widths, e.g. "784-256-10"; "auto" for the data's */
    mlp_act act;               /* hidden activation (default ReLU) */
    mlp_loss loss;             /* default cross-entropy */
    mlp_init_kind init;        /* default MLP_INIT_AUTO */
    int batchnorm;             /* batch normalisation before hidden activations */
    float dropout, dropout_input;
    int epochs, threads, quiet;
    const char *log, *out, *export_c, *export_c_int8, *export_name; /* files; out defaults to "model.mlp" */
    mlp_train_config train;    /* optimizer, schedule, batch, seed, ... */
} mlp_cli;

/* The defaults: --layers 784-256-128-10, ReLU, cross-entropy, 10 epochs,
   1 thread, model.mlp, mlp_train_defaults(). */
MLPDEF mlp_cli mlp_cli_defaults(void);
/* If argv[*i] is one of the flags above, reads it (and its value, moving
   *i past it) and returns 1; returns 0 for any other argument; MLP_EARG for
   a missing or bad value, mlp_error() saying which ("--lr x: expected a
   number in 1e-12..1e+06"). */
MLPDEF int mlp_cli_flag(mlp_cli *cli, int argc, char **argv, int *i);
/* The flags' help text, one per line, for a program's --help. */
MLPDEF const char *mlp_cli_help(void);
/* The network the flags describe, its weights initialised from the seed:
   --layers with "auto" as the first width taking n_in, as the last n_out
   (0: unknown, then "auto" is an error), --act, --loss, --init,
   --batchnorm, --dropout, --dropout-input, --threads. */
MLPDEF mlp_net *mlp_cli_create(const mlp_cli *cli, int n_in, int n_out);
#ifndef MLP_NO_STDIO
/* Writes the C headers the flags ask for (--export-c, --export-c-int8).
   With --export-c-int8 and a test set, *int8 (optional) gets the int8
   model's loss and accuracy on it; its n is 0 otherwise. */
MLPDEF int      mlp_cli_export(const mlp_cli *cli, const mlp_net *net, const mlp_dataset *test, mlp_eval *int8);
#endif

/* ---- checkpoints ------------------------------------------------------- */
/* Checkpoints: the model, its SGD velocity and the training configuration,
   after `epoch` whole epochs and `batch` batches of the next one, so that
   training resumes bit-identically (the shuffle depends only on seed and
   epoch). Same format rules as model files. cfg's callbacks are not saved. */
MLPDEF int      mlp_checkpoint_save_memory(const mlp_net *net, const mlp_train_config *cfg,
                                           int epoch, int batch, void *buf, size_t cap, size_t *size);
MLPDEF mlp_net *mlp_checkpoint_load_memory(const void *buf, size_t size, mlp_train_config *cfg,
                                           int *epoch, int *batch);
#ifndef MLP_NO_STDIO
MLPDEF int      mlp_checkpoint_save(const mlp_net *net, const mlp_train_config *cfg,
                                    int epoch, int batch, const char *path);
MLPDEF mlp_net *mlp_checkpoint_load(const char *path, mlp_train_config *cfg, int *epoch, int *batch);
#endif

/* What a training loop keeps besides the network and its optimizer, so
   that a run resumed from a checkpoint ends exactly as the uninterrupted
   run: where it stands, the training statistics of the epoch so far (for
   that epoch's log line) and the state of early stopping. Zero it for a
   fresh run. The loop owns the meaning of the early-stopping fields; the
   checkpoint only keeps them. */
typedef struct mlp_train_state {
    int epoch, batch;          /* whole epochs done; batches done of the next */
    mlp_eval so_far;           /* training statistics of those batches */
    double best_loss;          /* the best watched loss so far (when best_epoch > 0) */
    int best_epoch;            /* its epoch, from 1; 0: none yet */
    int bad_epochs;            /* epochs since the watched loss last improved */
    mlp_eval best_train;       /* the training statistics of the best epoch */
    mlp_net *best;             /* the best epoch's weights (the network's layers), or
                                  NULL; mlp_checkpoint_load_state* allocates it and
                                  the caller frees it (mlp_free) */
} mlp_train_state;

/* Checkpoints with that state (the calls above keep epoch and batch only).
   Merge two parts of an epoch's statistics with mlp_eval_merge. */
MLPDEF int      mlp_checkpoint_save_state_memory(const mlp_net *net, const mlp_train_config *cfg,
                                                 const mlp_train_state *st, void *buf, size_t cap, size_t *size);
MLPDEF mlp_net *mlp_checkpoint_load_state_memory(const void *buf, size_t size, mlp_train_config *cfg,
                                                 mlp_train_state *st);
#ifndef MLP_NO_STDIO
MLPDEF int      mlp_checkpoint_save_state(const mlp_net *net, const mlp_train_config *cfg,
                                          const mlp_train_state *st, const char *path);
MLPDEF mlp_net *mlp_checkpoint_load_state(const char *path, mlp_train_config *cfg, mlp_train_state *st);
#endif
/* The statistics of a and b together (e.g. an epoch's batches before and
   after a resume). */
MLPDEF mlp_eval mlp_eval_merge(const mlp_eval *a, const mlp_eval *b);

#ifdef __cplusplus
}
#endif
#endif /* MLP_H_INCLUDED */

/* ========================================================================= */
#ifdef MLP_IMPLEMENTATION

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory and errors --------------------------------------------------- */

#if defined(MLP_MALLOC) && defined(MLP_FREE)
/* both given */
#elif !defined(MLP_MALLOC) && !defined(MLP_FREE)
#define MLP_MALLOC(sz)      malloc(sz)
#define MLP_FREE(p)         free(p)
#else
#error "Define both or neither of MLP_MALLOC and MLP_FREE."
#endif

/* No single allocation is larger than this (256 GiB on 64-bit hosts): a
   wrong size is refused with a message instead of exhausting the machine. */
#ifndef MLP_MAX_ALLOC
#define MLP_MAX_ALLOC ((size_t)-1 > 0xffffffffu ? ((size_t)-1 >> 26) : ((size_t)-1 >> 1))
#endif

#ifndef MLP_ASSERT
#include <assert.h>
#define MLP_ASSERT(x) assert(x)
#endif

#if defined(__cplusplus) && __cplusplus >= 201103L
#define MLP__THREAD_LOCAL thread_local
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_THREADS__)
#define MLP__THREAD_LOCAL _Thread_local
#elif defined(__GNUC__)
#define MLP__THREAD_LOCAL __thread
#elif defined(_MSC_VER)
#define MLP__THREAD_LOCAL __declspec(thread)
#else
#define MLP__THREAD_LOCAL /* no TLS: the message is shared between threads */
#endif

static MLP__THREAD_LOCAL char mlp__error_message[256];

MLPDEF const char *mlp_error(void) { return mlp__error_message; }

#define MLP__STR2(x) #x
#define MLP__STR(x) MLP__STR2(x)
MLPDEF const char *mlp_version(void)
{
    return MLP__STR(MLP_VERSION_MAJOR) "." MLP__STR(MLP_VERSION_MINOR) "." MLP__STR(MLP_VERSION_PATCH);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int mlp__fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mlp__error_message, sizeof mlp__error_message, fmt, ap);
    va_end(ap);
    return code;
}

/* a * b * c bytes if that is at most MLP_MAX_ALLOC, else 0 */
static size_t mlp__size3(size_t a, size_t b, size_t c)
{
    if (a == 0 || b == 0 || c == 0) return 0;
    if (a > MLP_MAX_ALLOC / b) return 0;
    if (a * b > MLP_MAX_ALLOC / c) return 0;
    return a * b * c;
}

static void *mlp__alloc(size_t a, size_t b, size_t c)
{
    size_t n = mlp__size3(a, b, c);
    void *p = n ? MLP_MALLOC(n) : NULL;
    if (!p) mlp__fail(MLP_ENOMEM, "out of memory (%llu x %llu x %llu bytes)",
                      (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
    return p;
}

/* A data set's rows are read in a new random order every epoch. On 4 KiB
   pages nearly every row then misses the TLB, and under a hypervisor each
   miss is a two-level page walk: the batch gather took a fifth of B1's
   step on one thread (perf), a fifteenth on 2 MiB pages. Linux backs a block with 2 MiB pages when asked
   (transparent huge pages in "madvise" mode, Debian's default) or always;
   the advice is only a hint, so its result is ignored. Strict C99 headers
   hide madvise, hence the declaration; 14 is MADV_HUGEPAGE. */
#if defined(__linux__) && !defined(MLP_NO_HUGE_PAGES)
#ifdef __cplusplus
extern "C"
#endif
int madvise(void *addr, size_t length, int advice);
#define MLP__HUGE_PAGE ((uintptr_t)2 << 20)
static void *mlp__alloc_rows(size_t a, size_t b, size_t c)
{
    void *p = mlp__alloc(a, b, c);
    uintptr_t begin = ((uintptr_t)p + MLP__HUGE_PAGE - 1) & ~(MLP__HUGE_PAGE - 1);
    uintptr_t end = ((uintptr_t)p + (p ? a * b * c : 0)) & ~(MLP__HUGE_PAGE - 1);
    if (p && end > begin) (void)madvise((void *)begin, (size_t)(end - begin), 14);
    return p;
}
#else
#define mlp__alloc_rows mlp__alloc
#endif

static void *mlp__calloc(size_t a, size_t b, size_t c)
{
    void *p = mlp__alloc(a, b, c);
    if (p) memset(p, 0, a * b * c);
    return p;
}

/* Zeroed memory starting on a 64-byte line (free with mlp__free64): the
   weights, gradients and optimizer state, so that where two threads' parts
   of a row meet, no line holds both (measured: B1 on two threads 0.38 ->
   0.35 s/epoch). The pointer MLP_MALLOC gave is kept just before. */
static void *mlp__calloc64(size_t a, size_t b, size_t c)
{
    size_t n = mlp__size3(a, b, c);
    unsigned char *raw, *p;
    if (n > (size_t)-1 - 64 - sizeof(void *)) n = 0;
    raw = n ? (unsigned char *)MLP_MALLOC(n + 64 + sizeof(void *)) : NULL;
    if (!raw) {
        mlp__fail(MLP_ENOMEM, "out of memory (%llu x %llu x %llu bytes)", (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
        return NULL;
    }
    p = raw + sizeof(void *);
    p += (64 - (uintptr_t)p % 64) % 64;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    memset(p, 0, n);
    return p;
}

static void mlp__free64(void *p)
{
    void *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
    MLP_FREE(raw);
}

/* ---- random numbers ------------------------------------------------------ */

MLPDEF void mlp_rng_seed(mlp_rng *rng, uint64_t seed, uint64_t stream)
{
    if (!rng) return;
    rng->state = 0;
    rng->inc = (stream << 1) | 1u;
    (void)mlp_rng_u32(rng);
    rng->state += seed;
    (void)mlp_rng_u32(rng);
}

MLPDEF uint32_t mlp_rng_u32(mlp_rng *rng)
{
    uint64_t old;
    uint32_t xorshifted, rot;
    if (!rng) return 0;
    old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

MLPDEF float mlp_rng_float(mlp_rng *rng)
{
    return (float)(mlp_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

MLPDEF uint32_t mlp_rng_below(mlp_rng *rng, uint32_t n)
{
    /* rejection sampling: no modulo bias */
    uint32_t threshold, r;
    if (n <= 1) return 0;
    threshold = (uint32_t)(-n) % n;
    do r = mlp_rng_u32(rng); while (r < threshold);
    return r % n;
}

static float mlp__rng_uniform(mlp_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * mlp_rng_float(rng);
}

/* ---- matrices ------------------------------------------------------------ */

MLPDEF int mlp_mat_create(mlp_mat *m, int rows, int cols)
{
    if (!m) return mlp__fail(MLP_EARG, "mlp_mat_create: NULL matrix");
    m->rows = m->cols = m->stride = 0;
    m->data = NULL;
    if (rows <= 0 || cols <= 0)
        return mlp__fail(MLP_EARG, "mlp_mat_create: bad shape %d x %d", rows, cols);
    m->data = (float *)mlp__calloc((size_t)rows, (size_t)cols, sizeof(float));
    if (!m->data) return MLP_ENOMEM;
    m->rows = rows;
    m->cols = m->stride = cols;
    return MLP_OK;
}

MLPDEF void mlp_mat_free(mlp_mat *m)
{
    if (!m) return;
    MLP_FREE(m->data);
    m->data = NULL;
    m->rows = m->cols = m->stride = 0;
}

/* an empty matrix when the shape makes no sense, so a bad view is never
   mistaken for a good one (its data is NULL) */
MLPDEF mlp_mat mlp_mat_view(float *data, int rows, int cols, int stride)
{
    mlp_mat m;
    int ok = data && rows > 0 && cols > 0 && stride >= cols;
    m.rows = ok ? rows : 0;
    m.cols = ok ? cols : 0;
    m.stride = ok ? stride : 0;
    m.data = ok ? data : NULL;
    return m;
}

MLPDEF mlp_mat mlp_mat_rows(mlp_mat m, int first, int count)
{
    if (first < 0 || first >= m.rows || count <= 0) return mlp_mat_view(NULL, 0, 0, 0);
    if (count > m.rows - first) count = m.rows - first;
    return mlp_mat_view(m.data + (size_t)first * m.stride, count, m.cols, m.stride);
}

MLPDEF float *mlp_mat_row(mlp_mat m, int i)
{
    return m.data && i >= 0 && i < m.rows ? m.data + (size_t)i * m.stride : NULL;
}

MLPDEF void mlp_mat_fill(mlp_mat *m, float value)
{
    int i, j;
    if (!m || !m->data) return;
    for (i = 0; i < m->rows; i++)
        for (j = 0; j < m->cols; j++) m->data[(size_t)i * m->stride + j] = value;
}

MLPDEF int mlp_mat_copy(mlp_mat *dst, const mlp_mat *src)
{
    int i;
    if (!dst || !src || !dst->data || !src->data)
        return mlp__fail(MLP_EARG, "mlp_mat_copy: NULL matrix");
    if (dst->rows != src->rows || dst->cols != src->cols)
        return mlp__fail(MLP_EARG, "mlp_mat_copy: shape %d x %d into %d x %d",
                         src->rows, src->cols, dst->rows, dst->cols);
    for (i = 0; i < src->rows; i++) /* memmove: a view may overlap its source */
        memmove(dst->data + (size_t)i * dst->stride, src->data + (size_t)i * src->stride,
                (size_t)src->cols * sizeof(float));
    return MLP_OK;
}

MLPDEF int mlp_mat_clone(mlp_mat *dst, const mlp_mat *src)
{
    int rc;
    if (!dst || !src || !src->data) return mlp__fail(MLP_EARG, "mlp_mat_clone: NULL matrix");
    if (dst == src) return mlp__fail(MLP_EARG, "mlp_mat_clone: a matrix cannot be cloned onto itself");
    if ((rc = mlp_mat_create(dst, src->rows, src->cols)) != MLP_OK) return rc;
    return mlp_mat_copy(dst, src);
}

/* ---- kernels and dispatch ------------------------------------------------ */
/* Every product goes through mlp__gemm(): C = alpha op(A) op(B) + beta C.
   The fast path is the classic Goto/BLIS blocking: op(B) is copied in
   KC x NC blocks into column panels NR wide, op(A) in MC x KC blocks into
   row panels MR tall (the copies absorb the transposes), and a register-
   blocked micro-kernel multiplies one MR x NR tile at a time. Each ISA only
   supplies its micro-kernel. mlp_gemm_ref stays as the oracle. */

/* element (r, c) of op(X) for a row-major X with leading dimension ld */
#define MLP__AT(X, trans, ld, r, c) ((trans) ? (X)[(size_t)(c) * (ld) + (r)] : (X)[(size_t)(r) * (ld) + (c)])

/* Shapes and pointers a GEMM call can use: sizes >= 0, leading dimensions
   that cover a row, no NULL matrix that would be read or written. */
static int mlp__gemm_args_ok(int trans_a, int trans_b, int M, int N, int K,
                             const float *A, int lda, const float *B, int ldb, const float *C, int ldc)
{
    if (M < 0 || N < 0 || K < 0) return mlp__fail(MLP_EARG, "gemm: negative size %d x %d x %d", M, N, K);
    if (M == 0 || N == 0) return MLP_OK;
    if (!C || (K > 0 && (!A || !B))) return mlp__fail(MLP_EARG, "gemm: NULL matrix");
    if (ldc < N || (K > 0 && (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N))))
        return mlp__fail(MLP_EARG, "gemm: leading dimension too small (lda %d, ldb %d, ldc %d)", lda, ldb, ldc);
    return MLP_OK;
}

MLPDEF int mlp_gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc)
{
    int i, j, k, rc;
    if ((rc = mlp__gemm_args_ok(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc)) != MLP_OK) return rc;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float sum = 0.0f;
            float *c = &C[(size_t)i * ldc + j];
            for (k = 0; k < K; k++)
                sum += MLP__AT(A, trans_a, lda, i, k) * MLP__AT(B, trans_b, ldb, k, j);
            *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c;
        }
    return MLP_OK;
}

static void mlp__scale_rows(int M, int N, float beta, float *C, int ldc)
{
    int i, j;
    for (i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f) for (j = 0; j < N; j++) c[j] *= beta;
    }
}

/* The "scalar" kernel: plain C whose loop orders walk memory contiguously,
   so any compiler can vectorise it a little. Needs no workspace. */
static void mlp__gemm_scalar(int trans_a, int trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc)
{
    int i, j, k;
    if (trans_b) {
        /* C[i][j] = alpha * dot(row i of op(A), row j of B) + beta C[i][j] */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                const float *b = B + (size_t)j * ldb;
                float sum = 0.0f, *c = &C[(size_t)i * ldc + j];
                if (trans_a) for (k = 0; k < K; k++) sum += A[(size_t)k * lda + i] * b[k];
                else { const float *a = A + (size_t)i * lda; for (k = 0; k < K; k++) sum += a[k] * b[k]; }
                *c = beta == 0.0f ? alpha * sum : alpha * sum + beta * *c;
            }
        return;
    }
    mlp__scale_rows(M, N, beta, C, ldc);
    for (i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (k = 0; k < K; k++) {
            const float *b = B + (size_t)k * ldb;
            float a = alpha * MLP__AT(A, trans_a, lda, i, k);
            for (j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
}

/* Blocking parameters: an MC x KC block of A stays in L2, a KC x NR panel of
   B in L1. MC and NC are multiples of every kernel's MR and NR. */
#define MLP__KC 256
#define MLP__MC 96
#define MLP__NC 512
#define MLP__MAX_MR 8
#define MLP__MAX_NR 32
#define MLP__PACK_A_FLOATS (MLP__MC * MLP__KC)
#define MLP__PACK_B_FLOATS (MLP__KC * MLP__NC)

/* tile = alpha * sum_k a[k][0..MR) (x) b[k][0..NR)  +  beta * tile
   (beta == 0: the tile is not read) */
typedef void (*mlp__micro_fn)(int kc, const float *a, const float *b, float *c, size_t ldc,
                              float alpha, float beta);

/* An instruction set's own packing of op(B) transposed (the strided
   reads), or NULL for the plain loop below. */
typedef void (*mlp__pack_fn)(float *dst, const float *src, int ld, int k0, int j0, int kc, int n);

/* The same tile with A read in place, so that A needs no packing: row r of
   the tile at a + r * lda (micro_a), or for A transposed column r at a + r
   (micro_at; step k at a + k * lda). NULL where packing pays. */
typedef void (*mlp__micro_a_fn)(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                                float alpha, float beta);

/* The tile with B (untransposed) read in place too, rows ldb apart, and A
   at any strides: row r's value for step k at a[r * sa_r + k * sa_k]
   (packed: 1, MR; in place: lda, 1; transposed: 1, lda). NULL: B is
   always packed. */
typedef void (*mlp__micro_b_fn)(int kc, const float *a, size_t sa_r, size_t sa_k, const float *b, size_t ldb,
                                float *c, size_t ldc, float alpha, float beta);

typedef struct mlp__kernel {
    mlp__micro_fn micro;
    int mr, nr;
    mlp__pack_fn pack_b_cols;
    mlp__micro_a_fn micro_a, micro_at;
    mlp__micro_b_fn micro_b;
} mlp__kernel;

/* Packs rows [0, m) x columns [0, kc) of op(A) (starting at i0, k0) into
   panels of mr rows: panel p holds, for each k, mr consecutive values. */
static void mlp__pack_a(float *dst, int trans, const float *A, int lda, int i0, int k0,
                        int m, int kc, int mr)
{
    int p, k, r;
    for (p = 0; p < m; p += mr, dst += (size_t)mr * kc) {
        int rows = m - p < mr ? m - p : mr;
        if (trans) { /* row k of A holds column k of op(A): copy runs of mr */
            for (k = 0; k < kc; k++) {
                const float *src = A + (size_t)(k0 + k) * lda + i0 + p;
                for (r = 0; r < rows; r++) dst[k * mr + r] = src[r];
                for (; r < mr; r++) dst[k * mr + r] = 0.0f;
            }
        } else {      /* read each row of A once, contiguously */
            for (r = 0; r < rows; r++) {
                const float *src = A + (size_t)(i0 + p + r) * lda + k0;
                for (k = 0; k < kc; k++) dst[k * mr + r] = src[k];
            }
            for (; r < mr; r++) for (k = 0; k < kc; k++) dst[k * mr + r] = 0.0f;
        }
    }
}

/* kc rows of nr floats from src (leading dimension ld) into dst, one after
   another. The copy's size is a constant for each kernel's width, so the
   compiler inlines it as a few vector moves: a memcpy call per row took
   three times as long (8.6 against 3 us for a 196 x 256 block). */
static void mlp__copy_panel(float *dst, const float *src, int ld, int kc, int nr)
{
    int k;
    switch (nr) {
    case 32: for (k = 0; k < kc; k++) memcpy(dst + (size_t)k * 32, src + (size_t)k * ld, 32 * sizeof(float)); break;
    case 16: for (k = 0; k < kc; k++) memcpy(dst + (size_t)k * 16, src + (size_t)k * ld, 16 * sizeof(float)); break;
    case 8:  for (k = 0; k < kc; k++) memcpy(dst + (size_t)k * 8, src + (size_t)k * ld, 8 * sizeof(float)); break;
    default: for (k = 0; k < kc; k++) memcpy(dst + (size_t)k * nr, src + (size_t)k * ld, (size_t)nr * sizeof(float));
    }
}

/* Packs rows [0, kc) x columns [0, n) of op(B) into panels nr columns wide. */
static void mlp__pack_b(float *dst, int trans, const float *B, int ldb, int k0, int j0,
                        int kc, int n, int nr)
{
    int p, k, c;
    for (p = 0; p < n; p += nr, dst += (size_t)nr * kc) {
        int cols = n - p < nr ? n - p : nr;
        if (!trans && cols == nr) mlp__copy_panel(dst, B + (size_t)k0 * ldb + j0 + p, ldb, kc, nr);
        else if (trans) {  /* row j of B holds column j of op(B): read it once */
            for (c = 0; c < cols; c++) {
                const float *src = B + (size_t)(j0 + p + c) * ldb + k0;
                for (k = 0; k < kc; k++) dst[k * nr + c] = src[k];
            }
            for (; c < nr; c++) for (k = 0; k < kc; k++) dst[k * nr + c] = 0.0f;
        } else {
            for (k = 0; k < kc; k++) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + p;
                memcpy(dst + k * nr, src, (size_t)cols * sizeof(float));
                for (c = cols; c < nr; c++) dst[k * nr + c] = 0.0f;
            }
        }
    }
}

/* C's m x n corner += the kernel's tile (computed into edge, NR wide) */
static void mlp__edge_to_c(const mlp__kernel *kern, const float *edge, float *c, int ldc, int m, int n, float beta)
{
    int i, j;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? edge[i * kern->nr + j] : edge[i * kern->nr + j] + beta * *cij;
        }
}

/* One MR x NR tile, full or clipped to m x n at the matrix edge. */
static void mlp__tile(const mlp__kernel *kern, int kc, const float *a, const float *b,
                      float *c, int ldc, int m, int n, float alpha, float beta)
{
    float edge[MLP__MAX_MR * MLP__MAX_NR];
    if (m == kern->mr && n == kern->nr) { kern->micro(kc, a, b, c, (size_t)ldc, alpha, beta); return; }
    kern->micro(kc, a, b, edge, (size_t)kern->nr, alpha, 0.0f);
    mlp__edge_to_c(kern, edge, c, ldc, m, n, beta);
}

/* A full-height tile with A read in place by micro, clipped to n columns. */
static void mlp__tile_in_place(const mlp__kernel *kern, mlp__micro_a_fn micro, int kc, const float *a, int lda,
                               const float *b, float *c, int ldc, int n, float alpha, float beta)
{
    float edge[MLP__MAX_MR * MLP__MAX_NR];
    if (n == kern->nr) { micro(kc, a, (size_t)lda, b, c, (size_t)ldc, alpha, beta); return; }
    micro(kc, a, (size_t)lda, b, edge, (size_t)kern->nr, alpha, 0.0f);
    mlp__edge_to_c(kern, edge, c, ldc, kern->mr, n, beta);
}

/* A whole-width tile with B read in place by kern->micro_b, clipped to m
   rows. */
static void mlp__tile_b_in_place(const mlp__kernel *kern, int kc, const float *a, size_t sa_r, size_t sa_k,
                                 const float *b, int ldb, float *c, int ldc, int m, float alpha, float beta)
{
    float edge[MLP__MAX_MR * MLP__MAX_NR];
    if (m == kern->mr) { kern->micro_b(kc, a, sa_r, sa_k, b, (size_t)ldb, c, (size_t)ldc, alpha, beta); return; }
    kern->micro_b(kc, a, sa_r, sa_k, b, (size_t)ldb, edge, (size_t)kern->nr, alpha, 0.0f);
    mlp__edge_to_c(kern, edge, c, ldc, m, kern->nr, beta);
}

/* A batch's products with a layer's weights (z = x W, and the input
   gradient dz W^T) have few rows and a wide op(B), the weights: the
   driver would copy all of them into panels at every step (the transposed
   packing alone took 8% of a one-thread recipe network profile). Computed as the transpose C^T = op(B)^T op(A)^T, the weights are
   read in place by the in-place kernels and only the batch is packed; for
   narrower weights the transposes of C cost more than the packing saves
   (B1, 256 wide: 0.39 against 0.41 s/epoch on one thread). Each element's sum runs over the same K blocks in
   the same order, and fma(a, b, c) = fma(b, a, c), so the bits are the
   direct product's when beta is 0 or 1 (for other betas a clipped tile
   rounds alpha c + beta C twice, a whole one once, and which tiles are
   clipped changes with the transpose). A kernel that reads an untransposed
   B in place (micro_b) needs neither: 64 x 800 . 800 x 800 in the cache,
   406.5 us by the transpose, 370.9 read in place. */
#define MLP__BY_TRANSPOSE_ROWS 64
#define MLP__BY_TRANSPOSE_COLS 1536 /* the columns of C per pass: C^T's share of pack_b */

static int mlp__transpose_pays(const mlp__kernel *kern, int trans_a, int trans_b, int M, int N, int K, float beta)
{
    return !trans_a && (beta == 0.0f || beta == 1.0f) && M <= MLP__BY_TRANSPOSE_ROWS && N > MLP__NC && K >= 64 &&
           (trans_b ? kern->micro_a : kern->micro_at) != NULL && (trans_b || !kern->micro_b);
}

/* dst (cols x rows, leading dimension ldd) = src (rows x cols, lds)
   transposed, in tiles that stay in the cache */
static void mlp__transpose(float *dst, int ldd, const float *src, int lds, int rows, int cols)
{
    int i0, j0, i, j;
    for (i0 = 0; i0 < rows; i0 += 16)
        for (j0 = 0; j0 < cols; j0 += 16)
            for (i = i0; i < rows && i < i0 + 16; i++)
                for (j = j0; j < cols && j < j0 + 16; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
}

/* Called by the blocked driver as soon as rows [i0, i0 + rows) of C are
   final, while they are still in the cache (a training step updates those
   rows of the weights there and then). */
typedef struct mlp__rows_hook {
    void (*fn)(void *ctx, int i0, int rows);
    void *ctx;
} mlp__rows_hook;

static void mlp__gemm_blocks_then(const mlp__kernel *kern, float *pack_a, float *pack_b, int kb,
                                  int trans_a, int trans_b, int M, int N, int K, float alpha,
                                  const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc, const mlp__rows_hook *done);

static void mlp__gemm_blocks(const mlp__kernel *kern, float *pack_a, float *pack_b, int kb,
                             int trans_a, int trans_b, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc)
{
    mlp__gemm_blocks_then(kern, pack_a, pack_b, kb, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

static void mlp__gemm_by_transpose(const mlp__kernel *kern, float *pack_a, float *pack_b, int kb, int trans_b,
                                   int M, int N, int K, float alpha, const float *A, int lda,
                                   const float *B, int ldb, float beta, float *C, int ldc)
{
    float *ct = pack_b + (size_t)kb * (size_t)((M + kern->nr - 1) / kern->nr * kern->nr); /* after A^T's panels */
    int j0;
    MLP_ASSERT(MLP__KC * MLP__BY_TRANSPOSE_ROWS + MLP__BY_TRANSPOSE_COLS * MLP__BY_TRANSPOSE_ROWS <= MLP__PACK_B_FLOATS);
    for (j0 = 0; j0 < N; j0 += MLP__BY_TRANSPOSE_COLS) {
        int nc = N - j0 < MLP__BY_TRANSPOSE_COLS ? N - j0 : MLP__BY_TRANSPOSE_COLS;
        if (beta != 0.0f) mlp__transpose(ct, M, C + j0, ldc, M, nc);
        mlp__gemm_blocks(kern, pack_a, pack_b, kb, !trans_b, 1, nc, M, K, alpha, trans_b ? B + (size_t)j0 * ldb : B + j0, ldb,
                          A, lda, beta, ct, M);
        mlp__transpose(C + j0, ldc, ct, M, nc, M);
    }
}

/* The blocked driver, K taken in blocks of kb (at most MLP__KC); pack_a and
   pack_b hold MLP__PACK_A_FLOATS and MLP__PACK_B_FLOATS floats.
   For a product with few rows an untransposed B is read in place (only a
   last, narrower panel is packed): each of its panels serves so few tiles
   that copying it costs more than the reads it makes contiguous. B1's
   first product on one thread (64 x 784 . 784 x 256, in the cache):
   133.7 -> 116.8 us, 192 -> 220 GFLOP/s. */
#define MLP__B_IN_PLACE_ROWS 256
static void mlp__gemm_blocks_then(const mlp__kernel *kern, float *pack_a, float *pack_b, int kb,
                                  int trans_a, int trans_b, int M, int N, int K, float alpha,
                                  const float *A, int lda, const float *B, int ldb,
                                  float beta, float *C, int ldc, const mlp__rows_hook *done)
{
    mlp__micro_a_fn in_place = trans_a ? kern->micro_at : kern->micro_a;
    int b_in_place = !trans_b && kern->micro_b && M <= MLP__B_IN_PLACE_ROWS;
    int jc, pc, ic, jr, ir;
    MLP_ASSERT(kb >= 1 && kb <= MLP__KC);
    if (mlp__transpose_pays(kern, trans_a, trans_b, M, N, K, beta)) {
        mlp__gemm_by_transpose(kern, pack_a, pack_b, kb, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (done) done->fn(done->ctx, 0, M);
        return;
    }
    for (jc = 0; jc < N; jc += MLP__NC) {
        int nc = N - jc < MLP__NC ? N - jc : MLP__NC;
        for (pc = 0; pc < K; pc += kb) {
            int kc = K - pc < kb ? K - pc : kb;
            float beta_k = pc == 0 ? beta : 1.0f; /* later K blocks accumulate */
            int in_place_cols = b_in_place ? nc / kern->nr * kern->nr : 0; /* the rest packed, at the start of pack_b */
            if (trans_b && kern->pack_b_cols) kern->pack_b_cols(pack_b, B, ldb, pc, jc, kc, nc);
            else if (in_place_cols < nc)
                mlp__pack_b(pack_b, trans_b, B, ldb, pc, jc + in_place_cols, kc, nc - in_place_cols, kern->nr);
            for (ic = 0; ic < M; ic += MLP__MC) {
                int mc = M - ic < MLP__MC ? M - ic : MLP__MC;
                int whole = in_place ? mc / kern->mr * kern->mr : 0; /* rows of whole tiles read in place */
                if (in_place) { /* only the last, partial tile is packed, at the start of pack_a */
                    if (whole < mc) mlp__pack_a(pack_a, trans_a, A, lda, ic + whole, pc, mc - whole, kc, kern->mr);
                } else mlp__pack_a(pack_a, trans_a, A, lda, ic, pc, mc, kc, kern->mr);
                for (jr = 0; jr < nc; jr += kern->nr)
                    for (ir = 0; ir < mc; ir += kern->mr)
                        if (jr < in_place_cols)
                            mlp__tile_b_in_place(kern, kc, ir < whole ? (trans_a ? A + (size_t)pc * lda + ic + ir : A + (size_t)(ic + ir) * lda + pc)
                                                                      : pack_a + (size_t)(ir - whole) * kc,
                                                 ir >= whole ? 1 : trans_a ? 1 : (size_t)lda,
                                                 ir >= whole ? (size_t)kern->mr : trans_a ? (size_t)lda : 1,
                                                 B + (size_t)pc * ldb + jc + jr, ldb, C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                                 mc - ir < kern->mr ? mc - ir : kern->mr, alpha, beta_k);
                        else if (ir < whole)
                            mlp__tile_in_place(kern, in_place, kc, trans_a ? A + (size_t)pc * lda + ic + ir
                                                                           : A + (size_t)(ic + ir) * lda + pc, lda, pack_b + (size_t)(jr - in_place_cols) * kc,
                                               C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                               nc - jr < kern->nr ? nc - jr : kern->nr, alpha, beta_k);
                        else
                            mlp__tile(kern, kc, pack_a + (size_t)(ir - whole) * kc, pack_b + (size_t)(jr - in_place_cols) * kc,
                                  C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                  mc - ir < kern->mr ? mc - ir : kern->mr,
                                  nc - jr < kern->nr ? nc - jr : kern->nr, alpha, beta_k);
                if (done && jc + nc == N && pc + kc == K) done->fn(done->ctx, ic, mc);
            }
        }
    }
}

/* The K blocks of a product: as few as MLP__KC allows, all of one size
   (784 = 4 x 196, not 3 x 256 + 16). Each block's sum is added to C in
   turn, so the blocks fix the rounding, whoever computes them: a training
   step can split a product's K among its threads at block boundaries and
   add the blocks in order (mlp__step_forward_by_inputs) for the same bits. */
static int mlp__k_block(int K)
{
    int blocks = (K + MLP__KC - 1) / MLP__KC;
    return blocks > 0 ? (K + blocks - 1) / blocks : 1;
}

static void mlp__gemm_blocked(const mlp__kernel *kern, float *pack_a, float *pack_b,
                              int trans_a, int trans_b, int M, int N, int K, float alpha,
                              const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc)
{
    mlp__gemm_blocks(kern, pack_a, pack_b, mlp__k_block(K), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* -- micro-kernels: one per instruction set -- */

#if defined(__GNUC__) || defined(__clang__)
#define MLP__ALWAYS_INLINE __attribute__((always_inline)) inline
#elif defined(_MSC_VER)
#define MLP__ALWAYS_INLINE __forceinline
#else
#define MLP__ALWAYS_INLINE
#endif

/* The x86-64 vector kernels are compiled whatever the build's -march: GCC
   and clang need a target attribute on each function that
   uses AVX2 or AVX-512 intrinsics, MSVC compiles them as they are. Which
   ones run is decided at run time (mlp_isa_supported). */
#if !defined(MLP_NO_SIMD) && (defined(__x86_64__) || defined(_M_X64)) && \
    (defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER))
#define MLP__X86_64 1
#include <immintrin.h>
#if defined(__GNUC__) || defined(__clang__)
#define MLP__TARGET(t) __attribute__((target(t)))
#else
#define MLP__TARGET(t)
#endif
#if defined(_MSC_VER)
#include <intrin.h> /* __cpuidex */
#else
#include <cpuid.h>
#endif
#endif
#if !defined(MLP_NO_SIMD) && defined(__aarch64__)
#define MLP__NEON 1
#include <arm_neon.h>
#endif
/* WebAssembly's 128-bit SIMD, when the compiler is asked for it (emcc
   -msimd128); a browser without it refuses the whole module, so there is
   nothing to detect at run time. */
#if !defined(MLP_NO_SIMD) && defined(__wasm_simd128__)
#define MLP__WASM128 1
#include <wasm_simd128.h>
#endif

#if defined(MLP__X86_64)
/* Each kernel keeps its MR x NR accumulators in named registers: written as
   arrays in loops, compilers at -O2 spill them to memory. ROWS(X) expands X
   once per tile row. */

/* SSE2 (every x86-64 CPU): 4 x 8 tile, no FMA */
#define MLP__ROWS4(X) X(0) X(1) X(2) X(3)
static void mlp__micro_sse2(int kc, const float *a, const float *b, float *c, size_t ldc,
                            float alpha, float beta)
{
#define MLP__DECL(r) __m128 c##r##0 = _mm_setzero_ps(), c##r##1 = _mm_setzero_ps();
#define MLP__STEP(r) va = _mm_set1_ps(a[r]); \
    c##r##0 = _mm_add_ps(c##r##0, _mm_mul_ps(va, b0)); c##r##1 = _mm_add_ps(c##r##1, _mm_mul_ps(va, b1));
#define MLP__STORE(r) { float *cr = c + (size_t)r * ldc; \
    __m128 x0 = _mm_mul_ps(valpha, c##r##0), x1 = _mm_mul_ps(valpha, c##r##1); \
    if (beta != 0.0f) { x0 = _mm_add_ps(x0, _mm_mul_ps(vbeta, _mm_loadu_ps(cr))); \
                        x1 = _mm_add_ps(x1, _mm_mul_ps(vbeta, _mm_loadu_ps(cr + 4))); } \
    _mm_storeu_ps(cr, x0); _mm_storeu_ps(cr + 4, x1); }
    __m128 va, b0, b1, valpha = _mm_set1_ps(alpha), vbeta = _mm_set1_ps(beta);
    int k;
    MLP__ROWS4(MLP__DECL)
    for (k = 0; k < kc; k++, a += 4, b += 8) {
        b0 = _mm_loadu_ps(b); b1 = _mm_loadu_ps(b + 4);
        MLP__ROWS4(MLP__STEP)
    }
    MLP__ROWS4(MLP__STORE)
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

/* AVX2 + FMA: 6 x 16 tile, 12 accumulators in ymm registers. Row r's
   value for step k is a[r * sa_r + k * sa_k]: packed A (sa_r 1, sa_k 6), or
   A read in place (sa_r lda, sa_k 1; transposed: sa_r 1, sa_k lda), which
   needs no packing: packing would
   copy the whole of A once per column block (once per thread when threads
   share the columns) into a layout the broadcasts do not need. */
#define MLP__ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
MLP__TARGET("avx2,fma")
static MLP__ALWAYS_INLINE void mlp__tile_avx2(int kc, const float *a, size_t sa_r, size_t sa_k, const float *b,
                                              size_t sb_k, float *c, size_t ldc, float alpha, float beta)
{
#define MLP__DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps(); \
    const float *a##r = a + (size_t)r * sa_r;
#define MLP__STEP(r) va = _mm256_broadcast_ss(a##r + (size_t)k * sa_k); \
    c##r##0 = _mm256_fmadd_ps(va, b0, c##r##0); c##r##1 = _mm256_fmadd_ps(va, b1, c##r##1);
#define MLP__STORE(r) { float *cr = c + (size_t)r * ldc; \
    __m256 x0 = _mm256_mul_ps(valpha, c##r##0), x1 = _mm256_mul_ps(valpha, c##r##1); \
    if (beta != 0.0f) { x0 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(cr), x0); \
                        x1 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(cr + 8), x1); } \
    _mm256_storeu_ps(cr, x0); _mm256_storeu_ps(cr + 8, x1); }
    __m256 va, b0, b1, valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
    int k;
    MLP__ROWS6(MLP__DECL)
    for (k = 0; k < kc; k++, b += sb_k) {
        b0 = _mm256_loadu_ps(b); b1 = _mm256_loadu_ps(b + 8);
        MLP__ROWS6(MLP__STEP)
    }
    MLP__ROWS6(MLP__STORE)
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

MLP__TARGET("avx2,fma")
static void mlp__micro_avx2(int kc, const float *a, const float *b, float *c, size_t ldc,
                            float alpha, float beta)
{
    mlp__tile_avx2(kc, a, 1, 6, b, 16, c, ldc, alpha, beta);
}

MLP__TARGET("avx2,fma")
static void mlp__micro_avx2_a(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                              float alpha, float beta)
{
    mlp__tile_avx2(kc, a, lda, 1, b, 16, c, ldc, alpha, beta);
}

MLP__TARGET("avx2,fma")
static void mlp__micro_avx2_at(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                               float alpha, float beta)
{
    mlp__tile_avx2(kc, a, 1, lda, b, 16, c, ldc, alpha, beta);
}

MLP__TARGET("avx2,fma")
static void mlp__micro_avx2_b(int kc, const float *a, size_t sa_r, size_t sa_k, const float *b, size_t ldb,
                              float *c, size_t ldc, float alpha, float beta)
{
    mlp__tile_avx2(kc, a, sa_r, sa_k, b, ldb, c, ldc, alpha, beta);
}

/* Packs op(B) = B^T (row j of B is column j of op(B)) into panels nr
   wide: 8 x 8 blocks read as rows of B and stored transposed, where the
   plain loop would store one float at a time with a stride (and AVX-512's
   gathers took 11.5 us for B1's 256 x 128 weights, these 2.4). Layout as
   in mlp__pack_b. */
MLP__TARGET("avx2,fma")
static void mlp__pack_b_cols_x8(float *dst, const float *B, int ldb, int k0, int j0, int kc, int n, int nr)
{
    int p, k, h, r;
    for (p = 0; p < n; p += nr, dst += (size_t)nr * kc) {
        if (n - p < nr) { mlp__pack_b(dst, 1, B, ldb, k0, j0 + p, kc, n - p, nr); continue; }
        for (h = 0; h < nr; h += 8) { /* columns h..h+7 of the panel: rows of B */
            const float *b = B + (size_t)(j0 + p + h) * ldb + k0;
            for (k = 0; k + 8 <= kc; k += 8) {
                __m256 r0 = _mm256_loadu_ps(b + k), r1 = _mm256_loadu_ps(b + (size_t)ldb + k);
                __m256 r2 = _mm256_loadu_ps(b + (size_t)2 * ldb + k), r3 = _mm256_loadu_ps(b + (size_t)3 * ldb + k);
                __m256 r4 = _mm256_loadu_ps(b + (size_t)4 * ldb + k), r5 = _mm256_loadu_ps(b + (size_t)5 * ldb + k);
                __m256 r6 = _mm256_loadu_ps(b + (size_t)6 * ldb + k), r7 = _mm256_loadu_ps(b + (size_t)7 * ldb + k);
                __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
                __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
                __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
                __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
                __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
                __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
                __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
                float *d = dst + (size_t)k * nr + h;
                _mm256_storeu_ps(d,                   _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(d + nr,              _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(d + 2 * (size_t)nr,  _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(d + 3 * (size_t)nr,  _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(d + 4 * (size_t)nr,  _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(d + 5 * (size_t)nr,  _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(d + 6 * (size_t)nr,  _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(d + 7 * (size_t)nr,  _mm256_permute2f128_ps(u3, u7, 0x31));
            }
            for (; k < kc; k++) /* the last kc % 8 steps */
                for (r = 0; r < 8; r++) dst[(size_t)k * nr + h + r] = b[(size_t)r * ldb + k];
        }
    }
}

MLP__TARGET("avx2,fma")
static void mlp__pack_b_cols_avx2(float *dst, const float *B, int ldb, int k0, int j0, int kc, int n)
{
    mlp__pack_b_cols_x8(dst, B, ldb, k0, j0, kc, n, 16);
}

/* The AVX2 streaming kernels for the shapes packing serves badly (see the
   AVX-512 ones below for why): lanes [0, n) of a mask, for maskload and
   maskstore, which never touch the masked-off lanes' memory. */
MLP__TARGET("avx2,fma")
static __m256i mlp__mask8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* A few rows times an untransposed B, B streamed a row at a time: 96
   columns in 12 accumulators, 12 independent FMA chains. */
#define MLP__VEC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
MLP__TARGET("avx2,fma")
static void mlp__gemv_avx2(int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc)
{
    int i, j, k;
    for (i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        for (j = 0; j < N; j += 96) {
            __m256 zero = _mm256_setzero_ps();
#define MLP__MASK(q) const int n##q = N - j - 8 * q; const __m256i m##q = mlp__mask8(n##q); __m256 acc##q = zero;
#define MLP__FMA(q) if (n##q > 0) acc##q = _mm256_fmadd_ps(ak, n##q >= 8 ? _mm256_loadu_ps(b + 8 * q) \
                                                         : _mm256_maskload_ps(b + 8 * q, m##q), acc##q);
#define MLP__OUT(q) if (n##q > 0) { __m256 x = _mm256_mul_ps(_mm256_set1_ps(alpha), acc##q); \
    if (beta != 0.0f) x = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(c + j + 8 * q, m##q), x); \
    _mm256_maskstore_ps(c + j + 8 * q, m##q, x); }
            MLP__VEC12(MLP__MASK)
            for (k = 0; k < K; k++) {
                const float *b = B + (size_t)k * ldb + j;
                __m256 ak = _mm256_set1_ps(a[k]);
                if (a[k] == 0.0f) continue; /* see mlp__gemv_avx512 */
                MLP__VEC12(MLP__FMA)
            }
            MLP__VEC12(MLP__OUT)
#undef MLP__MASK
#undef MLP__FMA
#undef MLP__OUT
        }
    }
}

/* Products at most 16 columns wide with B untransposed, read in place: six
   rows of C at a time, two masked vectors each (one when N <= 8). A's
   element (i, k) is A[i * sa_i + k * sa_k], which covers A and A^T. */
MLP__TARGET("avx2,fma")
static void mlp__narrow_avx2(int M, int N, int K, float alpha, const float *A, size_t sa_i, size_t sa_k,
                             const float *B, int ldb, float beta, float *C, int ldc)
{
    const __m256i m0 = mlp__mask8(N), m1 = mlp__mask8(N - 8);
    const int wide = N > 8;
    __m256 zero = _mm256_setzero_ps(), valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta), b0, b1 = zero;
    int i = 0, k;
#define MLP__DECL(r) __m256 c##r##0 = zero, c##r##1 = zero;
#define MLP__STEP(r) { __m256 va = _mm256_set1_ps(a[r * sa_i]); c##r##0 = _mm256_fmadd_ps(va, b0, c##r##0); \
    if (wide) c##r##1 = _mm256_fmadd_ps(va, b1, c##r##1); }
#define MLP__STORE(r) { float *cr = C + (size_t)(i + r) * ldc; \
    __m256 x0 = _mm256_mul_ps(valpha, c##r##0), x1 = _mm256_mul_ps(valpha, c##r##1); \
    if (beta != 0.0f) { x0 = _mm256_fmadd_ps(vbeta, _mm256_maskload_ps(cr, m0), x0); \
                        if (wide) x1 = _mm256_fmadd_ps(vbeta, _mm256_maskload_ps(cr + 8, m1), x1); } \
    _mm256_maskstore_ps(cr, m0, x0); if (wide) _mm256_maskstore_ps(cr + 8, m1, x1); }
    for (; i + 6 <= M; i += 6) {
        MLP__ROWS6(MLP__DECL)
        for (k = 0; k < K; k++) {
            const float *a = A + (size_t)i * sa_i + (size_t)k * sa_k;
            b0 = _mm256_maskload_ps(B + (size_t)k * ldb, m0);
            if (wide) b1 = _mm256_maskload_ps(B + (size_t)k * ldb + 8, m1);
            MLP__ROWS6(MLP__STEP)
        }
        MLP__ROWS6(MLP__STORE)
    }
    for (; i < M; i++) { /* the last rows, one at a time */
        const float *a0 = A + (size_t)i * sa_i;
        __m256 c00 = zero, c01 = zero;
        for (k = 0; k < K; k++) {
            const float *a = a0 + (size_t)k * sa_k;
            b0 = _mm256_maskload_ps(B + (size_t)k * ldb, m0);
            if (wide) b1 = _mm256_maskload_ps(B + (size_t)k * ldb + 8, m1);
            MLP__STEP(0)
        }
        MLP__STORE(0)
    }
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

/* AVX-512F: 8 x 32 tile, 16 accumulators in zmm registers. Row r's value
   for step k is a[r * sa_r + k * sa_k], as in mlp__tile_avx2: packed A, or
   A (or A^T) read in place, which saves the gathers packing its rows takes. */
#define MLP__ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
MLP__TARGET("avx512f")
static MLP__ALWAYS_INLINE void mlp__tile_avx512(int kc, const float *a, size_t sa_r, size_t sa_k, const float *b,
                                                size_t sb_k, float *c, size_t ldc, float alpha, float beta)
{
#define MLP__DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = _mm512_setzero_ps(); \
    const float *a##r = a + (size_t)r * sa_r;
#define MLP__STEP(r) va = _mm512_set1_ps(a##r[(size_t)k * sa_k]); \
    c##r##0 = _mm512_fmadd_ps(va, b0, c##r##0); c##r##1 = _mm512_fmadd_ps(va, b1, c##r##1);
#define MLP__STORE(r) { float *cr = c + (size_t)r * ldc; \
    __m512 x0 = _mm512_mul_ps(valpha, c##r##0), x1 = _mm512_mul_ps(valpha, c##r##1); \
    if (beta != 0.0f) { x0 = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(cr), x0); \
                        x1 = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(cr + 16), x1); } \
    _mm512_storeu_ps(cr, x0); _mm512_storeu_ps(cr + 16, x1); }
    __m512 va, b0, b1, valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    int k;
    MLP__ROWS8(MLP__DECL)
    for (k = 0; k < kc; k++, b += sb_k) {
        b0 = _mm512_loadu_ps(b); b1 = _mm512_loadu_ps(b + 16);
        MLP__ROWS8(MLP__STEP)
    }
    MLP__ROWS8(MLP__STORE)
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512(int kc, const float *a, const float *b, float *c, size_t ldc,
                              float alpha, float beta)
{
    mlp__tile_avx512(kc, a, 1, 8, b, 32, c, ldc, alpha, beta);
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_a(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                                float alpha, float beta)
{
    mlp__tile_avx512(kc, a, lda, 1, b, 32, c, ldc, alpha, beta);
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_at(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                                 float alpha, float beta)
{
    mlp__tile_avx512(kc, a, 1, lda, b, 32, c, ldc, alpha, beta);
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_b(int kc, const float *a, size_t sa_r, size_t sa_k, const float *b, size_t ldb,
                                float *c, size_t ldc, float alpha, float beta)
{
    mlp__tile_avx512(kc, a, sa_r, sa_k, b, ldb, c, ldc, alpha, beta);
}
#endif

#if defined(MLP__X86_64)
/* op(B) = B^T for the 32-wide AVX-512 panels (every AVX-512 CPU has AVX2) */
MLP__TARGET("avx2,fma")
static void mlp__pack_b_cols_avx512(float *dst, const float *B, int ldb, int k0, int j0, int kc, int n)
{
    mlp__pack_b_cols_x8(dst, B, ldb, k0, j0, kc, n, 32);
}

/* AVX-512F, narrow: 8 x 16 tile for products at most 16 columns wide (the
   10-class output layer), where a 32-wide tile would be two-thirds padding;
   A packed or read in place as in mlp__tile_avx512 */
MLP__TARGET("avx512f")
static MLP__ALWAYS_INLINE void mlp__tile_avx512_narrow(int kc, const float *a, size_t sa_r, size_t sa_k,
                                                       const float *b, float *c, size_t ldc, float alpha, float beta)
{
#define MLP__DECL(r) __m512 c##r = _mm512_setzero_ps(); const float *a##r = a + (size_t)r * sa_r;
#define MLP__STEP(r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a##r[(size_t)k * sa_k]), b0, c##r);
#define MLP__STORE(r) { float *cr = c + (size_t)r * ldc; __m512 x0 = _mm512_mul_ps(valpha, c##r); \
    if (beta != 0.0f) x0 = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(cr), x0); \
    _mm512_storeu_ps(cr, x0); }
    __m512 b0, valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    int k;
    MLP__ROWS8(MLP__DECL)
    for (k = 0; k < kc; k++, b += 16) {
        b0 = _mm512_loadu_ps(b);
        MLP__ROWS8(MLP__STEP)
    }
    MLP__ROWS8(MLP__STORE)
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_narrow(int kc, const float *a, const float *b, float *c, size_t ldc,
                                     float alpha, float beta)
{
    mlp__tile_avx512_narrow(kc, a, 1, 8, b, c, ldc, alpha, beta);
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_narrow_a(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                                       float alpha, float beta)
{
    mlp__tile_avx512_narrow(kc, a, lda, 1, b, c, ldc, alpha, beta);
}

MLP__TARGET("avx512f")
static void mlp__micro_avx512_narrow_at(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc,
                                        float alpha, float beta)
{
    mlp__tile_avx512_narrow(kc, a, 1, lda, b, c, ldc, alpha, beta);
}

/* A few rows times an untransposed B (inference at batch 1): packing B would
   copy the whole weight matrix to use it once, so stream it instead, row k
   of B at a time. Up to 256 columns stay in 16 accumulators: 16 independent
   FMA chains hide the FMA latency, and each row of B is read contiguously.
   A row of B whose factor a[k] is exactly 0 is not read at all: it would
   add 0 x b = 0 to every sum, which leaves the sum's bits as they are
   (for finite b; an infinite or NaN weight there is not propagated).
   Most of an input digit's pixels are 0, and about half of what a ReLU
   layer passes on: B2 at batch 1 reads a fifth of the first layer. */
#define MLP__VEC16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
MLP__TARGET("avx512f")
static void mlp__gemv_avx512(int M, int N, int K, float alpha, const float *A, int lda,
                             const float *B, int ldb, float beta, float *C, int ldc)
{
    int i, j, k;
    for (i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        for (j = 0; j < N; j += 256) {
            __m512 zero = _mm512_setzero_ps();
#define MLP__MASK(q) __mmask16 m##q = N - j - 16 * q >= 16 ? (__mmask16)0xffff \
    : N - j - 16 * q <= 0 ? (__mmask16)0 : (__mmask16)((1u << (N - j - 16 * q)) - 1); __m512 acc##q = zero;
#define MLP__FMA(q) if (m##q) acc##q = _mm512_fmadd_ps(ak, _mm512_maskz_loadu_ps(m##q, b + 16 * q), acc##q);
#define MLP__OUT(q) if (m##q) { __m512 x = _mm512_mul_ps(_mm512_set1_ps(alpha), acc##q); \
    if (beta != 0.0f) x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m##q, c + j + 16 * q), x); \
    _mm512_mask_storeu_ps(c + j + 16 * q, m##q, x); }
            MLP__VEC16(MLP__MASK)
            for (k = 0; k < K; k++) {
                const float *b = B + (size_t)k * ldb + j;
                __m512 ak = _mm512_set1_ps(a[k]);
                if (a[k] == 0.0f) continue;
                MLP__VEC16(MLP__FMA)
            }
            MLP__VEC16(MLP__OUT)
#undef MLP__MASK
#undef MLP__FMA
#undef MLP__OUT
        }
    }
}

/* Products at most 16 columns wide with B untransposed (the 10-class output
   layer's forward pass and weight gradient): packing would copy about as
   much as the product computes, so read A and B in place. Eight rows of C
   at a time, one masked vector each: eight independent FMA chains. A's
   element (i, k) is A[i * sa_i + k * sa_k], which covers A and A^T. */
MLP__TARGET("avx512f")
static void mlp__narrow_avx512(int M, int N, int K, float alpha, const float *A, size_t sa_i, size_t sa_k,
                               const float *B, int ldb, float beta, float *C, int ldc)
{
    __mmask16 m = (__mmask16)((1u << N) - 1);
    __m512 zero = _mm512_setzero_ps(), valpha = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    int i = 0, k;
#define MLP__DECL(r) __m512 c##r = zero;
#define MLP__STEP(r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(a[r * sa_i]), bk, c##r);
#define MLP__STORE(r) { float *cr = C + (size_t)(i + r) * ldc; __m512 x = _mm512_mul_ps(valpha, c##r); \
    if (beta != 0.0f) x = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(m, cr), x); \
    _mm512_mask_storeu_ps(cr, m, x); }
    for (; i + 8 <= M; i += 8) {
        MLP__ROWS8(MLP__DECL)
        for (k = 0; k < K; k++) {
            const float *a = A + (size_t)i * sa_i + (size_t)k * sa_k;
            __m512 bk = _mm512_maskz_loadu_ps(m, B + (size_t)k * ldb);
            MLP__ROWS8(MLP__STEP)
        }
        MLP__ROWS8(MLP__STORE)
    }
    for (; i < M; i++) { /* the last rows, one chain each */
        __m512 c0 = zero;
        for (k = 0; k < K; k++)
            c0 = _mm512_fmadd_ps(_mm512_set1_ps(A[(size_t)i * sa_i + (size_t)k * sa_k]),
                                 _mm512_maskz_loadu_ps(m, B + (size_t)k * ldb), c0);
        MLP__STORE(0)
    }
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__STORE
}

/* A narrow product with A transposed (the output layer's weight gradient
   x^T dz): row i of C runs down column i of x, so 16 rows of C are one
   contiguous vector of x's row k, and each of the N <= 16 columns gets its
   own accumulator: every lane useful, N independent chains. Inlined once
   per N (the switch below), so the per-column tests fold away. */
MLP__TARGET("avx512f")
static MLP__ALWAYS_INLINE void mlp__narrow_ta_n(const int N, int M, int K, float alpha, const float *A, int lda,
                                                const float *B, int ldb, float beta, float *C, int ldc)
{
    float out[16][16];
    int i, j, k, r;
    for (i = 0; i < M; i += 16) {
        __mmask16 m = M - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (M - i)) - 1);
        int rows = M - i < 16 ? M - i : 16;
#define MLP__DECL(q) __m512 acc##q = _mm512_setzero_ps();
#define MLP__STEP(q) if (q < N) acc##q = _mm512_fmadd_ps(xk, _mm512_set1_ps(bk[q]), acc##q);
#define MLP__KEEP(q) if (q < N) _mm512_storeu_ps(out[q], acc##q);
        MLP__VEC16(MLP__DECL)
        for (k = 0; k < K; k++) {
            __m512 xk = _mm512_maskz_loadu_ps(m, A + (size_t)k * lda + i);
            const float *bk = B + (size_t)k * ldb;
            MLP__VEC16(MLP__STEP)
        }
        MLP__VEC16(MLP__KEEP)
#undef MLP__DECL
#undef MLP__STEP
#undef MLP__KEEP
        for (r = 0; r < rows; r++) {
            float *c = C + (size_t)(i + r) * ldc;
            for (j = 0; j < N; j++) c[j] = beta == 0.0f ? alpha * out[j][r] : alpha * out[j][r] + beta * c[j];
        }
    }
}

MLP__TARGET("avx512f")
static void mlp__narrow_ta_avx512(int M, int N, int K, float alpha, const float *A, int lda,
                                  const float *B, int ldb, float beta, float *C, int ldc)
{
    switch (N) {
#define MLP__CASE(q) case q + 1: mlp__narrow_ta_n(q + 1, M, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    MLP__VEC16(MLP__CASE)
#undef MLP__CASE
    default: break;
    }
}
#endif

#if defined(MLP__NEON)
/* NEON (AArch64): 8 x 8 tile, 16 accumulators, FMA by lane */
static void mlp__micro_neon(int kc, const float *a, const float *b, float *c, size_t ldc,
                            float alpha, float beta)
{
    float32x4_t acc[8][2], vb0, vb1, va0, va1;
    int k, r;
    for (r = 0; r < 8; r++) acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
    for (k = 0; k < kc; k++, a += 8, b += 8) {
        vb0 = vld1q_f32(b); vb1 = vld1q_f32(b + 4);
        va0 = vld1q_f32(a); va1 = vld1q_f32(a + 4);
        acc[0][0] = vfmaq_laneq_f32(acc[0][0], vb0, va0, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], vb1, va0, 0);
        acc[1][0] = vfmaq_laneq_f32(acc[1][0], vb0, va0, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], vb1, va0, 1);
        acc[2][0] = vfmaq_laneq_f32(acc[2][0], vb0, va0, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], vb1, va0, 2);
        acc[3][0] = vfmaq_laneq_f32(acc[3][0], vb0, va0, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], vb1, va0, 3);
        acc[4][0] = vfmaq_laneq_f32(acc[4][0], vb0, va1, 0); acc[4][1] = vfmaq_laneq_f32(acc[4][1], vb1, va1, 0);
        acc[5][0] = vfmaq_laneq_f32(acc[5][0], vb0, va1, 1); acc[5][1] = vfmaq_laneq_f32(acc[5][1], vb1, va1, 1);
        acc[6][0] = vfmaq_laneq_f32(acc[6][0], vb0, va1, 2); acc[6][1] = vfmaq_laneq_f32(acc[6][1], vb1, va1, 2);
        acc[7][0] = vfmaq_laneq_f32(acc[7][0], vb0, va1, 3); acc[7][1] = vfmaq_laneq_f32(acc[7][1], vb1, va1, 3);
    }
    for (r = 0; r < 8; r++) {
        float *cr = c + (size_t)r * ldc;
        float32x4_t x0 = vmulq_n_f32(acc[r][0], alpha), x1 = vmulq_n_f32(acc[r][1], alpha);
        if (beta != 0.0f) {
            x0 = vfmaq_n_f32(x0, vld1q_f32(cr), beta);
            x1 = vfmaq_n_f32(x1, vld1q_f32(cr + 4), beta);
        }
        vst1q_f32(cr, x0); vst1q_f32(cr + 4, x1);
    }
}
#endif

#if defined(MLP__WASM128)
/* 6 x 8 tiles of f32x4 vectors: 12 accumulators, two of B and one of A fit
   the 16 vector registers the engines map WebAssembly SIMD to on x86-64 and
   Arm. WebAssembly has no fused multiply-add (outside relaxed SIMD), so
   each step is a multiply and an add, rounded twice as the scalar code
   compiled for WebAssembly rounds it. */
static void mlp__micro_wasm128(int kc, const float *a, const float *b, float *c, size_t ldc,
                               float alpha, float beta)
{
    v128_t zero = wasm_f32x4_splat(0.0f), vb0, vb1, va;
    int k;
#define MLP__W128_DECL(r) v128_t c##r##0 = zero, c##r##1 = zero;
#define MLP__W128_STEP(r) va = wasm_f32x4_splat(a[r]); \
    c##r##0 = wasm_f32x4_add(c##r##0, wasm_f32x4_mul(va, vb0)); c##r##1 = wasm_f32x4_add(c##r##1, wasm_f32x4_mul(va, vb1));
#define MLP__W128_STORE(r) { float *cr = c + (size_t)r * ldc; \
    v128_t x0 = wasm_f32x4_mul(c##r##0, wasm_f32x4_splat(alpha)), x1 = wasm_f32x4_mul(c##r##1, wasm_f32x4_splat(alpha)); \
    if (beta != 0.0f) { x0 = wasm_f32x4_add(x0, wasm_f32x4_mul(wasm_v128_load(cr), wasm_f32x4_splat(beta))); \
                        x1 = wasm_f32x4_add(x1, wasm_f32x4_mul(wasm_v128_load(cr + 4), wasm_f32x4_splat(beta))); } \
    wasm_v128_store(cr, x0); wasm_v128_store(cr + 4, x1); }
    MLP__W128_DECL(0) MLP__W128_DECL(1) MLP__W128_DECL(2) MLP__W128_DECL(3) MLP__W128_DECL(4) MLP__W128_DECL(5)
    for (k = 0; k < kc; k++, a += 6, b += 8) {
        vb0 = wasm_v128_load(b); vb1 = wasm_v128_load(b + 4);
        MLP__W128_STEP(0) MLP__W128_STEP(1) MLP__W128_STEP(2) MLP__W128_STEP(3) MLP__W128_STEP(4) MLP__W128_STEP(5)
    }
    MLP__W128_STORE(0) MLP__W128_STORE(1) MLP__W128_STORE(2) MLP__W128_STORE(3) MLP__W128_STORE(4) MLP__W128_STORE(5)
#undef MLP__W128_DECL
#undef MLP__W128_STEP
#undef MLP__W128_STORE
}
#endif

/* -- elementwise kernels: ReLU, optimizer updates, blur -- */
/* Every pass with a vector version lives here: its scalar form (the
   oracle, and the fallback) and one form per instruction set. The kernel
   table below picks one of each for a network. */

/* ReLU runs on every hidden value twice per batch; written as a C ternary it
   compiles to a branch that mispredicts on half the values, so it gets
   vector versions (max / compare-and-mask, no branches). */
static void mlp__relu_forward_scalar(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void mlp__relu_backward_scalar(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* dst[i ldd + j] += src[i lds + j] for rows i in order, j < n: the
   partial sums of a product split by its inputs, added to z; with ldd = 0
   every row adds into one (a bias gradient's column sums). Each element's
   additions run in row order in every version, so all give the same bits. */
static void mlp__add_rows_scalar(float *dst, size_t ldd, const float *src, size_t lds, int rows, size_t n)
{
    size_t j;
    int i;
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) dst[(size_t)i * ldd + j] += src[(size_t)i * lds + j];
}

/* Batch normalisation's passes over B rows (leading dimension ld) of n
   units (mlp__batchnorm_stats, _apply, _backward say what they compute).
   Every per-unit sum runs over the rows in order, so a vector version
   that adds 16 units at a time gives the same sums. */
static void mlp__bn_moments_scalar(float *mean, float *sq, const float *x, size_t ld, int B, size_t n, float rb)
{
    size_t j;
    int i;
    for (j = 0; j < n; j++) mean[j] = sq[j] = 0.0f;
    for (i = 0; i < B; i++)
        for (j = 0; j < n; j++) mean[j] += x[(size_t)i * ld + j];
    for (j = 0; j < n; j++) mean[j] *= rb;
    for (i = 0; i < B; i++)  /* two passes: no cancellation in E[x^2] - E[x]^2 */
        for (j = 0; j < n; j++) { float d = x[(size_t)i * ld + j] - mean[j]; sq[j] += d * d; }
}

static void mlp__bn_apply_scalar(float *y, float *h, const float *x, size_t ld, int B, size_t n,
                                 const float *mean, const float *inv, const float *gamma, const float *beta)
{
    size_t j;
    int i;
    for (i = 0; i < B; i++) {
        const float *xi = x + (size_t)i * ld;
        float *hi = h + (size_t)i * ld, *yi = y + (size_t)i * ld;
        for (j = 0; j < n; j++) { hi[j] = (xi[j] - mean[j]) * inv[j]; yi[j] = gamma[j] * hi[j] + beta[j]; }
    }
}

static void mlp__bn_backward_scalar(float *dx, float *dgamma, float *dbeta, const float *dy, const float *h, size_t ld,
                                    int B, size_t n, const float *gamma, const float *inv, float rb, int batch_stats)
{
    size_t j;
    int i;
    for (j = 0; j < n; j++) dgamma[j] = dbeta[j] = 0.0f;
    for (i = 0; i < B; i++)
        for (j = 0; j < n; j++) {
            dbeta[j] += dy[(size_t)i * ld + j];
            dgamma[j] += dy[(size_t)i * ld + j] * h[(size_t)i * ld + j];
        }
    if (!dx) return;
    for (i = 0; i < B; i++) {
        const float *dyi = dy + (size_t)i * ld, *hi = h + (size_t)i * ld;
        float *dxi = dx + (size_t)i * ld;
        if (batch_stats)
            for (j = 0; j < n; j++) dxi[j] = gamma[j] * inv[j] * (dyi[j] - (dbeta[j] + hi[j] * dgamma[j]) * rb);
        else
            for (j = 0; j < n; j++) dxi[j] = gamma[j] * inv[j] * dyi[j];
    }
}

/* v = momentum v + dw + weight_decay w;  w -= lr v   (one block).
   Each returns the sum of the new v and w: NaN or infinite exactly when
   some gradient or weight went bad (or is about to overflow), which costs
   two adds per vector in a loop that waits on memory anyway. */
static float mlp__sgd_scalar(float *w, const float *dw, float *v, size_t n,
                             float lr, float momentum, float weight_decay)
{
    size_t i;
    float sum = 0.0f;
    for (i = 0; i < n; i++) {
        v[i] = momentum * v[i] + dw[i] + weight_decay * w[i];
        w[i] -= lr * v[i];
        sum += v[i] + w[i];
    }
    return sum;
}

/* Nesterov momentum, in the same v form: v = mu v + g; w -= lr (g + mu v). */
static float mlp__nesterov_scalar(float *w, const float *dw, float *v, size_t n,
                                  float lr, float momentum, float weight_decay)
{
    size_t i;
    float sum = 0.0f;
    for (i = 0; i < n; i++) {
        float g = dw[i] + weight_decay * w[i];
        v[i] = momentum * v[i] + g;
        w[i] -= lr * (g + momentum * v[i]);
        sum += v[i] + w[i];
    }
    return sum;
}

/* Adam (returns the sum of the new first moment and weights, like the
   momentum blocks above): m = b1 m + (1 - b1) g; s = b2 s + (1 - b2) g^2;
   w -= lr (m / c1) / (sqrt(s / c2) + eps), c = 1 - b^t. AdamW applies the
   weight decay to w directly (w -= lr wd w) instead of adding it to g. */
typedef struct mlp__adam_param { float lr, b1, b2, eps, c1, c2; int decoupled; } mlp__adam_param;

static float mlp__adam_scalar(float *w, const float *dw, float *m, float *s2, size_t n,
                              const mlp__adam_param *a, float wd)
{
    size_t i;
    float sum = 0.0f;
    for (i = 0; i < n; i++) {
        float g = a->decoupled ? dw[i] : dw[i] + wd * w[i];
        m[i] = a->b1 * m[i] + (1.0f - a->b1) * g;
        s2[i] = a->b2 * s2[i] + (1.0f - a->b2) * g * g;
        if (a->decoupled) w[i] -= a->lr * wd * w[i];
        w[i] -= a->lr * (m[i] / a->c1) / (sqrtf(s2[i] / a->c2) + a->eps);
        sum += m[i] + w[i];
    }
    return sum;
}

/* The normalised Gaussian taps k[0..2r] for sigma; returns r. */
static int mlp__gaussian_taps(float *k, float sigma)
{
    float sum = 0.0f;
    int r = (int)ceilf(3.0f * sigma), i;
    if (r > 31) r = 31;
    for (i = -r; i <= r; i++) sum += k[i + r] = expf(-(float)(i * i) / (2.0f * sigma * sigma));
    for (i = 0; i <= 2 * r; i++) k[i] /= sum;
    return r;
}

/* in-place separable Gaussian blur of a w x h field (zero outside); tmp
   holds w * h. Each tap is one branch-free pass over a row, with its
   bounds clipped once instead of tested per pixel. */
static void mlp__gaussian_blur_scalar(float *f, float *tmp, int w, int h, float sigma)
{
    float k[64];
    int r = mlp__gaussian_taps(k, sigma), i, x, y;
    for (x = 0; x < w * h; x++) tmp[x] = 0.0f;
    for (y = 0; y < h; y++)
        for (i = -r; i <= r; i++) {
            int lo = i < 0 ? -i : 0, hi = i > 0 ? w - i : w;
            float *t = tmp + (size_t)y * w;
            const float *src = f + (size_t)y * w + i;
            for (x = lo; x < hi; x++) t[x] += k[i + r] * src[x];
        }
    for (x = 0; x < w * h; x++) f[x] = 0.0f;
    for (y = 0; y < h; y++)
        for (i = -r; i <= r; i++) {
            float *d = f + (size_t)y * w;
            const float *src = tmp + (size_t)(y + i) * w;
            if (y + i < 0 || y + i >= h) continue;
            for (x = 0; x < w; x++) d[x] += k[i + r] * src[x];
        }
}

/* Cache hints: a line to be read (MLP__PREFETCH) or written (MLP__PREFETCH_W). */
#if defined(__GNUC__) || defined(__clang__)
#define MLP__PREFETCH(p) __builtin_prefetch(p)
#define MLP__PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define MLP__PREFETCH(p) ((void)(p))
#define MLP__PREFETCH_W(p) ((void)(p))
#endif

#if defined(MLP__X86_64)
static void mlp__relu_forward_sse2(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(y + i, _mm_max_ps(_mm_loadu_ps(x + i), _mm_setzero_ps()));
    mlp__relu_forward_scalar(y + i, x + i, n - i);
}

static void mlp__relu_backward_sse2(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(dx + i, _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(y + i), _mm_setzero_ps()), _mm_loadu_ps(dy + i)));
    mlp__relu_backward_scalar(dx + i, dy + i, y + i, n - i);
}

static void mlp__add_rows_sse2(float *dst, size_t ldd, const float *src, size_t lds, int rows, size_t n)
{
    size_t j = 0;
    int i;
    for (; j + 4 <= n; j += 4)
        if (ldd == 0) { /* the sum stays in a register */
            __m128 acc = _mm_loadu_ps(dst + j);
            for (i = 0; i < rows; i++) acc = _mm_add_ps(acc, _mm_loadu_ps(src + (size_t)i * lds + j));
            _mm_storeu_ps(dst + j, acc);
        } else
            for (i = 0; i < rows; i++) {
                float *d = dst + (size_t)i * ldd + j;
                _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d), _mm_loadu_ps(src + (size_t)i * lds + j)));
            }
    mlp__add_rows_scalar(dst + j, ldd, src + j, lds, rows, n - j);
}

MLP__TARGET("avx512f")
static void mlp__add_rows_avx512(float *dst, size_t ldd, const float *src, size_t lds, int rows, size_t n)
{
    __m512 zero = _mm512_setzero_ps();
    size_t j;
    int i;
    for (j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        if (ldd == 0) { /* the sum stays in a register */
            __m512 acc = _mm512_mask_loadu_ps(zero, m, dst + j);
            for (i = 0; i < rows; i++) acc = _mm512_add_ps(acc, _mm512_mask_loadu_ps(zero, m, src + (size_t)i * lds + j));
            _mm512_mask_storeu_ps(dst + j, m, acc);
        } else
            for (i = 0; i < rows; i++) {
                float *d = dst + (size_t)i * ldd + j;
                _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_mask_loadu_ps(zero, m, d),
                                                          _mm512_mask_loadu_ps(zero, m, src + (size_t)i * lds + j)));
            }
    }
}

MLP__TARGET("avx512f")
static void mlp__relu_forward_avx512(float *y, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_maskz_max_ps((__mmask16)0xffff, _mm512_loadu_ps(x + i), _mm512_setzero_ps()));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_maskz_max_ps((__mmask16)0xffff, _mm512_mask_loadu_ps(_mm512_setzero_ps(), m, x + i), _mm512_setzero_ps()));
    }
}

MLP__TARGET("avx512f")
static void mlp__relu_backward_avx512(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 zero = _mm512_setzero_ps();
        __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_mask_loadu_ps(zero, m, y + i), zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(dx + i, m, _mm512_mask_loadu_ps(zero, pos, dy + i));
    }
}

/* batchnorm's passes, 16 units at a time down the rows (masked at the
   end), with the scalar versions' operations in their order */
MLP__TARGET("avx512f")
static void mlp__bn_moments_avx512(float *mean, float *sq, const float *x, size_t ld, int B, size_t n, float rb)
{
    size_t j;
    int i;
    for (j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 sum = _mm512_setzero_ps(), q = _mm512_setzero_ps(), mu;
        for (i = 0; i < B; i++) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, x + (size_t)i * ld + j));
        mu = _mm512_mul_ps(sum, _mm512_set1_ps(rb));
        for (i = 0; i < B; i++) {
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + (size_t)i * ld + j), mu);
            q = _mm512_add_ps(q, _mm512_mul_ps(d, d));
        }
        _mm512_mask_storeu_ps(mean + j, m, mu);
        _mm512_mask_storeu_ps(sq + j, m, q);
    }
}

MLP__TARGET("avx512f")
static void mlp__bn_apply_avx512(float *y, float *h, const float *x, size_t ld, int B, size_t n,
                                 const float *mean, const float *inv, const float *gamma, const float *beta)
{
    size_t j;
    int i;
    for (j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 mu = _mm512_maskz_loadu_ps(m, mean + j), iv = _mm512_maskz_loadu_ps(m, inv + j);
        __m512 g = _mm512_maskz_loadu_ps(m, gamma + j), b = _mm512_maskz_loadu_ps(m, beta + j);
        for (i = 0; i < B; i++) {
            size_t at = (size_t)i * ld + j;
            __m512 hv = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + at), mu), iv);
            _mm512_mask_storeu_ps(h + at, m, hv);
            _mm512_mask_storeu_ps(y + at, m, _mm512_add_ps(_mm512_mul_ps(g, hv), b));
        }
    }
}

MLP__TARGET("avx512f")
static void mlp__bn_backward_avx512(float *dx, float *dgamma, float *dbeta, const float *dy, const float *h, size_t ld,
                                    int B, size_t n, const float *gamma, const float *inv, float rb, int batch_stats)
{
    size_t j;
    int i;
    for (j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 db = _mm512_setzero_ps(), dg = _mm512_setzero_ps(), gi, vrb = _mm512_set1_ps(rb);
        for (i = 0; i < B; i++) {
            size_t at = (size_t)i * ld + j;
            __m512 dyv = _mm512_maskz_loadu_ps(m, dy + at);
            db = _mm512_add_ps(db, dyv);
            dg = _mm512_add_ps(dg, _mm512_mul_ps(dyv, _mm512_maskz_loadu_ps(m, h + at)));
        }
        _mm512_mask_storeu_ps(dbeta + j, m, db);
        _mm512_mask_storeu_ps(dgamma + j, m, dg);
        if (!dx) continue;
        gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gamma + j), _mm512_maskz_loadu_ps(m, inv + j));
        for (i = 0; i < B; i++) {
            size_t at = (size_t)i * ld + j;
            __m512 dyv = _mm512_maskz_loadu_ps(m, dy + at), r = dyv;
            if (batch_stats)
                r = _mm512_sub_ps(dyv, _mm512_mul_ps(_mm512_add_ps(db, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, h + at), dg)), vrb));
            _mm512_mask_storeu_ps(dx + at, m, _mm512_mul_ps(gi, r));
        }
    }
}

/* The update streams three arrays larger than L2 once per batch: it is
   memory-bound, so wide loads matter more than anything else here. */
MLP__TARGET("avx2,fma")
static float mlp__sgd_avx2(float *w, const float *dw, float *v, size_t n,
                           float lr, float momentum, float weight_decay)
{
    size_t i = 0;
    float lanes[8], sum;
    int k;
    __m256 vlr = _mm256_set1_ps(lr), vmu = _mm256_set1_ps(momentum), vwd = _mm256_set1_ps(weight_decay);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i);
        __m256 vi = _mm256_fmadd_ps(vmu, _mm256_loadu_ps(v + i), _mm256_fmadd_ps(vwd, wi, _mm256_loadu_ps(dw + i)));
        _mm256_storeu_ps(v + i, vi);
        wi = _mm256_fnmadd_ps(vlr, vi, wi);
        _mm256_storeu_ps(w + i, wi);
        acc = _mm256_add_ps(acc, _mm256_add_ps(vi, wi));
    }
    _mm256_storeu_ps(lanes, acc);
    sum = mlp__sgd_scalar(w + i, dw + i, v + i, n - i, lr, momentum, weight_decay);
    for (k = 0; k < 8; k++) sum += lanes[k];
    return sum;
}

/* the sum of a vector's 16 lanes */
MLP__TARGET("avx512f")
static float mlp__sum16(__m512 acc)
{
    float lanes[16], sum = 0.0f;
    int k;
    _mm512_storeu_ps(lanes, acc);
    for (k = 0; k < 16; k++) sum += lanes[k];
    return sum;
}

/* The weights' lines were just read by the other threads' products, so
   each store must first take its line back from them: asking for the line
   with intent to write 8 lines ahead (prefetchw) overlaps those transfers.
   B1 on two threads, bench --peers b1 2, 4 alternating runs: 0.35 -> 0.32
   s/epoch. */
#define MLP__UPDATE_AHEAD 128

/* Momentum SGD, or Nesterov's variant (w -= lr (g + mu v) instead of
   w -= lr v); g = dw + weight_decay w, v = mu v + g in both. */

MLP__TARGET("avx512f,prfchw")
static MLP__ALWAYS_INLINE float mlp__momentum_avx512(float *w, const float *dw, float *v, size_t n,
                                  float lr, float momentum, float weight_decay, int nesterov)
{
    size_t i = 0;
    __m512 vlr = _mm512_set1_ps(lr), vmu = _mm512_set1_ps(momentum), vwd = _mm512_set1_ps(weight_decay);
    __m512 acc = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m512 wi = _mm512_loadu_ps(w + i);
        __m512 g = _mm512_fmadd_ps(vwd, wi, _mm512_loadu_ps(dw + i));
        __m512 vi = _mm512_fmadd_ps(vmu, _mm512_loadu_ps(v + i), g);
        if (i + MLP__UPDATE_AHEAD < n) {
            MLP__PREFETCH_W(w + i + MLP__UPDATE_AHEAD);
            MLP__PREFETCH(dw + i + MLP__UPDATE_AHEAD);
        }
        _mm512_storeu_ps(v + i, vi);
        wi = _mm512_fnmadd_ps(vlr, nesterov ? _mm512_fmadd_ps(vmu, vi, g) : vi, wi);
        _mm512_storeu_ps(w + i, wi);
        acc = _mm512_add_ps(acc, _mm512_add_ps(vi, wi));
    }
    return mlp__sum16(acc) + (nesterov ? mlp__nesterov_scalar : mlp__sgd_scalar)(w + i, dw + i, v + i, n - i,
                                                                              lr, momentum, weight_decay);
}

MLP__TARGET("avx512f,prfchw")
static float mlp__sgd_avx512(float *w, const float *dw, float *v, size_t n,
                             float lr, float momentum, float weight_decay)
{
    return mlp__momentum_avx512(w, dw, v, n, lr, momentum, weight_decay, 0);
}

MLP__TARGET("avx512f,prfchw")
static float mlp__nesterov_avx512(float *w, const float *dw, float *v, size_t n,
                                  float lr, float momentum, float weight_decay)
{
    return mlp__momentum_avx512(w, dw, v, n, lr, momentum, weight_decay, 1);
}

MLP__TARGET("avx512f")
static float mlp__adam_avx512(float *w, const float *dw, float *m, float *s2, size_t n,
                              const mlp__adam_param *a, float wd)
{
    size_t i = 0;
    __m512 b1 = _mm512_set1_ps(a->b1), b2 = _mm512_set1_ps(a->b2), k1 = _mm512_set1_ps(1.0f - a->b1);
    __m512 k2 = _mm512_set1_ps(1.0f - a->b2), r1 = _mm512_set1_ps(1.0f / a->c1), r2 = _mm512_set1_ps(1.0f / a->c2);
    __m512 lr = _mm512_set1_ps(a->lr), eps = _mm512_set1_ps(a->eps), vwd = _mm512_set1_ps(wd);
    __m512 shrink = _mm512_set1_ps(a->decoupled ? 1.0f - a->lr * wd : 1.0f), acc = _mm512_setzero_ps();
    if (a->decoupled) vwd = _mm512_setzero_ps(); /* the decay goes to w, not to g */
    for (; i + 16 <= n; i += 16) {
        __m512 wi = _mm512_loadu_ps(w + i);
        __m512 g = _mm512_fmadd_ps(vwd, wi, _mm512_loadu_ps(dw + i));
        __m512 mi = _mm512_fmadd_ps(b1, _mm512_loadu_ps(m + i), _mm512_mul_ps(k1, g));
        __m512 si = _mm512_fmadd_ps(b2, _mm512_loadu_ps(s2 + i), _mm512_mul_ps(k2, _mm512_mul_ps(g, g)));
        __m512 den = _mm512_add_ps(_mm512_mask_sqrt_ps(_mm512_setzero_ps(), (__mmask16)0xffff, _mm512_mul_ps(si, r2)), eps);
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(s2 + i, si);
        wi = _mm512_fnmadd_ps(lr, _mm512_div_ps(_mm512_mul_ps(mi, r1), den), _mm512_mul_ps(shrink, wi));
        _mm512_storeu_ps(w + i, wi);
        acc = _mm512_add_ps(acc, _mm512_add_ps(mi, wi));
    }
    return mlp__sum16(acc) + mlp__adam_scalar(w + i, dw + i, m + i, s2 + i, n - i, a, wd);
}

/* The same with 16 pixels of a row per instruction (MNIST rows are 28
   wide: two vectors, the second masked); the sums run in the same order. */
MLP__TARGET("avx512f")
static void mlp__gaussian_blur_avx512(float *f, float *tmp, int w, int h, float sigma)
{
    float k[64];
    int r = mlp__gaussian_taps(k, sigma), i, x, y;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x += 16) {
            __mmask16 m = w - x >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (w - x)) - 1);
            __m512 acc = _mm512_setzero_ps();
            for (i = -r; i <= r; i++) { /* lanes whose x + i falls outside the row stay out */
                int lo = x + i < 0 ? -(x + i) : 0, hi = w - x - i;
                __mmask16 mi = m;
                if (lo >= 16 || hi <= 0) continue;
                if (lo > 0) mi &= (__mmask16)(0xffffu << lo);
                if (hi < 16) mi &= (__mmask16)((1u << hi) - 1);
                acc = _mm512_mask3_fmadd_ps(_mm512_set1_ps(k[i + r]), _mm512_maskz_loadu_ps(mi, f + (size_t)y * w + x + i), acc, mi);
            }
            _mm512_mask_storeu_ps(tmp + (size_t)y * w + x, m, acc);
        }
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x += 16) {
            __mmask16 m = w - x >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (w - x)) - 1);
            __m512 acc = _mm512_setzero_ps();
            for (i = -r; i <= r; i++) {
                if (y + i < 0 || y + i >= h) continue;
                acc = _mm512_fmadd_ps(_mm512_set1_ps(k[i + r]), _mm512_maskz_loadu_ps(m, tmp + (size_t)(y + i) * w + x), acc);
            }
            _mm512_mask_storeu_ps(f + (size_t)y * w + x, m, acc);
        }
}
#endif

#if defined(MLP__NEON)
static void mlp__relu_forward_neon(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmaxq_f32(vld1q_f32(x + i), vdupq_n_f32(0.0f)));
    mlp__relu_forward_scalar(y + i, x + i, n - i);
}

static void mlp__relu_backward_neon(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dx + i, vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(vld1q_f32(y + i), vdupq_n_f32(0.0f)),
                                                          vreinterpretq_u32_f32(vld1q_f32(dy + i)))));
    mlp__relu_backward_scalar(dx + i, dy + i, y + i, n - i);
}
#endif

#if defined(MLP__WASM128)
static void mlp__relu_forward_wasm128(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_pmax(wasm_f32x4_splat(0.0f), wasm_v128_load(x + i)));
    mlp__relu_forward_scalar(y + i, x + i, n - i);
}

static void mlp__relu_backward_wasm128(float *dx, const float *dy, const float *y, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(dx + i, wasm_v128_and(wasm_f32x4_gt(wasm_v128_load(y + i), wasm_f32x4_splat(0.0f)), wasm_v128_load(dy + i)));
    mlp__relu_backward_scalar(dx + i, dy + i, y + i, n - i);
}
#endif

/* -- dispatch -- */

MLPDEF const char *mlp_isa_name(mlp_isa isa)
{
    static const char *names[] = {"auto", "scalar", "sse2", "avx2", "avx512", "neon", "wasm128"};
    return isa >= MLP_ISA_AUTO && isa <= MLP_ISA_WASM128 ? names[isa] : "unknown";
}

#if defined(MLP__X86_64)
/* -- which x86-64 instructions this CPU and OS allow -- */
/* Asked of the CPU directly (cpuid, xgetbv) rather than through a
   compiler's builtin, so that MSVC, GCC and clang share one answer. */
static void mlp__cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
#if defined(_MSC_VER)
    int x[4];
    __cpuidex(x, (int)leaf, (int)sub);
    r[0] = (unsigned)x[0]; r[1] = (unsigned)x[1]; r[2] = (unsigned)x[2]; r[3] = (unsigned)x[3];
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

/* The register-state bits the OS saves on a context switch (XCR0). */
static unsigned mlp__os_saved_state(void)
{
#if defined(_MSC_VER)
    return (unsigned)_xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return lo;
#endif
}

/* An instruction set is usable when the CPU has it and the OS saves its
   registers: AVX needs XMM+YMM state (XCR0 bits 1-2), AVX-512 also the
   opmask and upper ZMM state (bits 5-7). */
static int mlp__x86_has(mlp_isa isa)
{
    unsigned basic[4], leaf1[4], leaf7[4] = {0, 0, 0, 0}, xcr0;
    mlp__cpuid(0, 0, basic);
    mlp__cpuid(1, 0, leaf1);
    if (!(leaf1[2] & (1u << 27))) return 0;          /* no OSXSAVE: no xgetbv, no AVX */
    if (basic[0] >= 7) mlp__cpuid(7, 0, leaf7);
    xcr0 = mlp__os_saved_state();
    if (isa == MLP_ISA_AVX2)
        return (leaf1[2] & (1u << 12)) && (leaf1[2] & (1u << 28)) && (leaf7[1] & (1u << 5)) &&
               (xcr0 & 0x06u) == 0x06u;              /* FMA, AVX, AVX2 */
    return isa == MLP_ISA_AVX512 && (leaf7[1] & (1u << 16)) && (xcr0 & 0xE6u) == 0xE6u;
}
#endif

MLPDEF int mlp_isa_supported(mlp_isa isa)
{
    switch (isa) {
    case MLP_ISA_SCALAR: return 1;
#if defined(MLP__X86_64)
    case MLP_ISA_SSE2: return 1;
    case MLP_ISA_AVX2: return mlp__x86_has(MLP_ISA_AVX2);
    case MLP_ISA_AVX512: return mlp__x86_has(MLP_ISA_AVX512);
#endif
#if defined(MLP__NEON)
    case MLP_ISA_NEON: return 1;
#endif
#if defined(MLP__WASM128)
    case MLP_ISA_WASM128: return 1;
#endif
    default: return 0;
    }
}

/* the mlp_isa called name, or -1 */
static int mlp__isa_index(const char *name)
{
    int i;
    for (i = MLP_ISA_AUTO; name && i <= MLP_ISA_WASM128; i++)
        if (!strcmp(name, mlp_isa_name((mlp_isa)i))) return i;
    return -1;
}

MLPDEF int mlp_isa_from_name(const char *name, mlp_isa *isa)
{
    int i = mlp__isa_index(name);
    if (i >= 0) {
        if (isa) *isa = (mlp_isa)i;
        return MLP_OK;
    }
    return mlp__fail(MLP_EARG, "unknown instruction set \"%s\" (expected auto, scalar, sse2, avx2, avx512, neon or wasm128)",
                     name ? name : "(null)");
}

MLPDEF mlp_isa mlp_isa_best(void)
{
    static const mlp_isa order[] = {MLP_ISA_AVX512, MLP_ISA_AVX2, MLP_ISA_NEON, MLP_ISA_WASM128, MLP_ISA_SSE2};
    size_t i;
#ifndef MLP_NO_STDIO
    int forced = mlp__isa_index(getenv("MLP_ISA"));
    if (forced > MLP_ISA_AUTO && mlp_isa_supported((mlp_isa)forced)) return (mlp_isa)forced;
#endif
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if (mlp_isa_supported(order[i])) return order[i];
    return MLP_ISA_SCALAR;
}

/* -- the kernel table -- */
/* Everything a network runs that has a vector version, chosen once per
   network from its instruction set: the only place that asks which one.
   The product entries may be NULL (the general blocked path, or with no
   micro-kernel the scalar GEMM); the elementwise ones are always set. */
typedef float (*mlp__momentum_fn)(float *w, const float *dw, float *v, size_t n,
                                  float lr, float momentum, float weight_decay);
typedef struct mlp__kernels {
    mlp_isa isa;
    const mlp__kernel *gemm;          /* the blocked GEMM's micro-kernel */
    const mlp__kernel *gemm_narrow;   /* ... for products at most 16 wide */
    void (*gemv)(int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);        /* M <= 2 */
    void (*narrow)(int M, int N, int K, float alpha, const float *A, size_t sa_i, size_t sa_k,
                   const float *B, int ldb, float beta, float *C, int ldc);     /* N <= 16 */
    void (*narrow_ta)(int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);  /* N <= 16, A^T */
    void (*relu_forward)(float *y, const float *x, size_t n);
    void (*relu_backward)(float *dx, const float *dy, const float *y, size_t n);
    mlp__momentum_fn sgd, nesterov;
    float (*adam)(float *w, const float *dw, float *m, float *s2, size_t n,
                  const mlp__adam_param *a, float wd);
    void (*blur)(float *f, float *tmp, int w, int h, float sigma);
    void (*bn_moments)(float *mean, float *sq, const float *x, size_t ld, int B, size_t n, float rb);
    void (*bn_apply)(float *y, float *h, const float *x, size_t ld, int B, size_t n,
                     const float *mean, const float *inv, const float *gamma, const float *beta);
    void (*bn_backward)(float *dx, float *dgamma, float *dbeta, const float *dy, const float *h, size_t ld,
                        int B, size_t n, const float *gamma, const float *inv, float rb, int batch_stats);
    void (*add_rows)(float *dst, size_t ldd, const float *src, size_t lds, int rows, size_t n);
} mlp__kernels;

/* isa must be supported here (not AUTO). */
static const mlp__kernels *mlp__kernels_for(mlp_isa isa)
{
    static const mlp__kernels scalar = {
        MLP_ISA_SCALAR, NULL, NULL, NULL, NULL, NULL,
        mlp__relu_forward_scalar, mlp__relu_backward_scalar,
        mlp__sgd_scalar, mlp__nesterov_scalar, mlp__adam_scalar, mlp__gaussian_blur_scalar,
        mlp__bn_moments_scalar, mlp__bn_apply_scalar, mlp__bn_backward_scalar, mlp__add_rows_scalar};
#if defined(MLP__X86_64)
    static const mlp__kernel micro_sse2 = {mlp__micro_sse2, 4, 8, NULL, NULL, NULL, NULL};
    static const mlp__kernel micro_avx2 = {mlp__micro_avx2, 6, 16, mlp__pack_b_cols_avx2,
                                          mlp__micro_avx2_a, mlp__micro_avx2_at, mlp__micro_avx2_b};
    static const mlp__kernel micro_avx512 = {mlp__micro_avx512, 8, 32, mlp__pack_b_cols_avx512,
                                            mlp__micro_avx512_a, mlp__micro_avx512_at, mlp__micro_avx512_b};
    static const mlp__kernel micro_avx512_narrow = {mlp__micro_avx512_narrow, 8, 16, NULL,
                                                   mlp__micro_avx512_narrow_a, mlp__micro_avx512_narrow_at, NULL};
    static const mlp__kernels sse2 = {
        MLP_ISA_SSE2, &micro_sse2, NULL, NULL, NULL, NULL,
        mlp__relu_forward_sse2, mlp__relu_backward_sse2,
        mlp__sgd_scalar, mlp__nesterov_scalar, mlp__adam_scalar, mlp__gaussian_blur_scalar,
        mlp__bn_moments_scalar, mlp__bn_apply_scalar, mlp__bn_backward_scalar, mlp__add_rows_sse2};
    static const mlp__kernels avx2 = {
        MLP_ISA_AVX2, &micro_avx2, NULL, mlp__gemv_avx2, mlp__narrow_avx2, NULL,
        mlp__relu_forward_sse2, mlp__relu_backward_sse2,
        mlp__sgd_avx2, mlp__nesterov_scalar, mlp__adam_scalar, mlp__gaussian_blur_scalar,
        mlp__bn_moments_scalar, mlp__bn_apply_scalar, mlp__bn_backward_scalar, mlp__add_rows_sse2};
    static const mlp__kernels avx512 = {
        MLP_ISA_AVX512, &micro_avx512, &micro_avx512_narrow,
        mlp__gemv_avx512, mlp__narrow_avx512, mlp__narrow_ta_avx512,
        mlp__relu_forward_avx512, mlp__relu_backward_avx512,
        mlp__sgd_avx512, mlp__nesterov_avx512, mlp__adam_avx512, mlp__gaussian_blur_avx512,
        mlp__bn_moments_avx512, mlp__bn_apply_avx512, mlp__bn_backward_avx512, mlp__add_rows_avx512};
    if (isa == MLP_ISA_SSE2) return &sse2;
    if (isa == MLP_ISA_AVX2) return &avx2;
    if (isa == MLP_ISA_AVX512) return &avx512;
#endif
#if defined(MLP__NEON)
    static const mlp__kernel micro_neon = {mlp__micro_neon, 8, 8, NULL, NULL, NULL, NULL};
    static const mlp__kernels neon = {
        MLP_ISA_NEON, &micro_neon, NULL, NULL, NULL, NULL,
        mlp__relu_forward_neon, mlp__relu_backward_neon,
        mlp__sgd_scalar, mlp__nesterov_scalar, mlp__adam_scalar, mlp__gaussian_blur_scalar,
        mlp__bn_moments_scalar, mlp__bn_apply_scalar, mlp__bn_backward_scalar, mlp__add_rows_scalar};
    if (isa == MLP_ISA_NEON) return &neon;
#endif
#if defined(MLP__WASM128)
    static const mlp__kernel micro_wasm128 = {mlp__micro_wasm128, 6, 8, NULL, NULL, NULL, NULL};
    static const mlp__kernels wasm128 = {
        MLP_ISA_WASM128, &micro_wasm128, NULL, NULL, NULL, NULL,
        mlp__relu_forward_wasm128, mlp__relu_backward_wasm128,
        mlp__sgd_scalar, mlp__nesterov_scalar, mlp__adam_scalar, mlp__gaussian_blur_scalar,
        mlp__bn_moments_scalar, mlp__bn_apply_scalar, mlp__bn_backward_scalar, mlp__add_rows_scalar};
    if (isa == MLP_ISA_WASM128) return &wasm128;
#endif
    MLP_ASSERT(isa == MLP_ISA_SCALAR);
    (void)isa; /* unused when neither SIMD path is compiled and NDEBUG is set */
    return &scalar;
}

/* The micro-kernel for an N columns wide product, or NULL for the scalar GEMM. */
static const mlp__kernel *mlp__micro_for(const mlp__kernels *k, int N)
{
    return k->gemm_narrow && N <= 16 ? k->gemm_narrow : k->gemm;
}

/* -- subnormal numbers -- */
/* As training goes on, more and more gradient and velocity values sink
   into the subnormal range, where this CPU's arithmetic gets many times
   slower (measured: a 784-800-800-10 epoch went from 8 s to 22 s within five
   epochs). Training sets flush-to-zero / denormals-are-zero for its own
   duration on the calling thread (restoring the caller's mode after) and
   for good on the pool's own threads. Results stay deterministic. */
#if defined(MLP__X86_64)
static unsigned mlp__flush_denormals(void)
{
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ | DAZ */
    return old;
}
static void mlp__restore_fp_mode(unsigned old) { _mm_setcsr(old); }
#else
static unsigned mlp__flush_denormals(void) { return 0; }
static void mlp__restore_fp_mode(unsigned old) { (void)old; }
#endif

/* -- threads -- */
/* A tiny fork-join pool: mlp__run(engine, fn, arg) calls fn(arg, t, n) once for
   each t in 0..n-1, t = 0 on the calling thread. Task t always runs the same
   slice of work, and slices never share an output element, so results are
   bit-identical for any thread count. Workers spin briefly between jobs
   (a batch issues several small jobs in a row), then sleep; so does the
   caller waiting for them to finish.
   It stands on a thin layer below: threads, a lock, condition variables and
   three atomic operations, from POSIX threads or from Win32, with atomics
   from GCC/clang builtins or MSVC; other compilers (tcc) get one thread. */
#if !defined(MLP_NO_THREADS) && (defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER))
#define MLP__HAS_ATOMICS 1
#endif
#if defined(MLP__HAS_ATOMICS) && defined(_WIN32)
#define MLP__THREADS 1
#define MLP__WIN32_THREADS 1
#include <windows.h>
#elif defined(MLP__HAS_ATOMICS) && (defined(__unix__) || defined(__APPLE__))
#define MLP__THREADS 1
#include <pthread.h>
#endif

#ifdef MLP__THREADS
#if defined(MLP__WIN32_THREADS)
typedef HANDLE mlp__thread;
typedef SRWLOCK mlp__mutex;
typedef CONDITION_VARIABLE mlp__cond;
static int  mlp__mutex_init(mlp__mutex *m) { InitializeSRWLock(m); return 0; }
static void mlp__mutex_destroy(mlp__mutex *m) { (void)m; } /* SRW locks need no cleanup */
static void mlp__lock(mlp__mutex *m) { AcquireSRWLockExclusive(m); }
static void mlp__unlock(mlp__mutex *m) { ReleaseSRWLockExclusive(m); }
static int  mlp__cond_init(mlp__cond *c) { InitializeConditionVariable(c); return 0; }
static void mlp__cond_destroy(mlp__cond *c) { (void)c; }
static void mlp__cond_wait(mlp__cond *c, mlp__mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void mlp__cond_wake_all(mlp__cond *c) { WakeAllConditionVariable(c); }
static void mlp__worker(void *p);
static DWORD WINAPI mlp__thread_main(LPVOID p) { mlp__worker(p); return 0; }
static int mlp__thread_start(mlp__thread *t, void *arg)
{
    *t = CreateThread(NULL, 0, mlp__thread_main, arg, 0, NULL);
    return *t ? 0 : -1;
}
static void mlp__thread_join(mlp__thread t) { WaitForSingleObject(t, INFINITE); CloseHandle(t); }
#else
typedef pthread_t mlp__thread;
typedef pthread_mutex_t mlp__mutex;
typedef pthread_cond_t mlp__cond;
static int  mlp__mutex_init(mlp__mutex *m) { return pthread_mutex_init(m, NULL); }
static void mlp__mutex_destroy(mlp__mutex *m) { pthread_mutex_destroy(m); }
static void mlp__lock(mlp__mutex *m) { pthread_mutex_lock(m); }
static void mlp__unlock(mlp__mutex *m) { pthread_mutex_unlock(m); }
static int  mlp__cond_init(mlp__cond *c) { return pthread_cond_init(c, NULL); }
static void mlp__cond_destroy(mlp__cond *c) { pthread_cond_destroy(c); }
static void mlp__cond_wait(mlp__cond *c, mlp__mutex *m) { pthread_cond_wait(c, m); }
static void mlp__cond_wake_all(mlp__cond *c) { pthread_cond_broadcast(c); }
static void mlp__worker(void *p);
static void *mlp__thread_main(void *p) { mlp__worker(p); return NULL; }
static int mlp__thread_start(mlp__thread *t, void *arg) { return pthread_create(t, NULL, mlp__thread_main, arg); }
static void mlp__thread_join(mlp__thread t) { pthread_join(t, NULL); }
#endif

/* Atomic loads (acquire), stores (release) and additions (returning the
   new value) on a shared counter: MSVC's Interlocked functions (full
   barriers) or the GCC/clang builtins. Counters wrap around harmlessly:
   they are only compared for equality or against zero. */
typedef long mlp__atomic;
#if defined(_MSC_VER)
static long mlp__atomic_get(volatile mlp__atomic *p) { return InterlockedCompareExchange(p, 0, 0); }
static void mlp__atomic_set(volatile mlp__atomic *p, long v) { InterlockedExchange(p, v); }
static long mlp__atomic_add(volatile mlp__atomic *p, long v) { return InterlockedExchangeAdd(p, v) + v; }
#else
static long mlp__atomic_get(volatile mlp__atomic *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void mlp__atomic_set(volatile mlp__atomic *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static long mlp__atomic_add(volatile mlp__atomic *p, long v) { return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL); }
#endif
#endif

#define MLP_MAX_THREADS 64
typedef void (*mlp__task_fn)(void *arg, int task, int n_tasks);

/* What a network computes with: its kernel table, the GEMM's packing
   buffers (one pair per thread, so no product allocates) and its thread
   pool. A network owns one. */
struct mlp__engine {
    const mlp__kernels *k;
    int n_threads;
    float *pack_a[MLP_MAX_THREADS], *pack_b[MLP_MAX_THREADS]; /* 64-byte aligned: a
                                 packed row of B never straddles cache lines */
    void *mem;
#ifdef MLP__THREADS
    mlp__thread workers[MLP_MAX_THREADS];
    int n_workers, has_sync;  /* has_sync: mutex, wake and done are initialised */
    mlp__mutex mutex;
    mlp__cond wake, done;     /* a job started; the last worker finished it */
    mlp__task_fn fn;
    void *arg;
    volatile mlp__atomic generation; /* bumped to start a job */
    volatile mlp__atomic pending;    /* workers still busy with the job */
    volatile mlp__atomic stop;
    mlp__cond crossed;               /* the last thread reached a barrier */
    volatile mlp__atomic arrived;    /* threads at the current barrier */
    volatile mlp__atomic barriers;   /* barriers crossed so far */
#endif
};
typedef struct mlp__engine mlp__engine;

#ifdef MLP__THREADS
typedef struct mlp__worker_arg { mlp__engine *g; int task; } mlp__worker_arg;

/* Waits spin first, then sleep: a hand-off between products takes
   microseconds, so a waiting thread spins (pause) about a tenth of a
   millisecond before it blocks on a condition variable. It never calls
   sched_yield: on a machine running other work, even at the lowest
   priority, a yield hands the core to that work for a whole time slice
   (measured beside niced fuzzers: B1 on two threads took 1.0-1.5 s per
   epoch with the yields, 0.5-0.6 s without). Blocking is what lets more
   threads than cores, or an emulator, make progress. */
#define MLP__SPINS 4096

static void mlp__pause(void)
{
#if defined(MLP__X86_64)
    _mm_pause();
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__ __volatile__("yield");
#endif
}

static void mlp__worker(void *p)
{
    mlp__engine *g = ((mlp__worker_arg *)p)->g;
    int task = ((mlp__worker_arg *)p)->task;
    long seen = 0;
    MLP_FREE(p);
    (void)mlp__flush_denormals(); /* this thread is the library's own */
    for (;;) {
        unsigned spin;
        long gen = seen;
        for (spin = 0; spin < MLP__SPINS && (gen = mlp__atomic_get(&g->generation)) == seen; spin++) mlp__pause();
        if (gen == seen) {
            mlp__lock(&g->mutex);
            while ((gen = mlp__atomic_get(&g->generation)) == seen && !mlp__atomic_get(&g->stop))
                mlp__cond_wait(&g->wake, &g->mutex);
            mlp__unlock(&g->mutex);
        }
        if (mlp__atomic_get(&g->stop)) return;
        seen = gen;
        g->fn(g->arg, task, g->n_threads);
        if (mlp__atomic_add(&g->pending, -1) == 0) { /* the last one: wake a caller that sleeps */
            mlp__lock(&g->mutex);
            mlp__cond_wake_all(&g->done);
            mlp__unlock(&g->mutex);
        }
    }
}

/* Inside a job: returns once all n threads of the job have called it. The
   last to arrive resets the count before it lets the others go, so a
   thread that hurries on to the next barrier counts there, not here. */
static void mlp__barrier(mlp__engine *g, int n)
{
    unsigned spin;
    long crossed;
    if (n <= 1) return;
    crossed = mlp__atomic_get(&g->barriers);
    if (mlp__atomic_add(&g->arrived, 1) == n) {
        mlp__atomic_set(&g->arrived, 0);
        mlp__lock(&g->mutex);
        mlp__atomic_add(&g->barriers, 1);
        mlp__cond_wake_all(&g->crossed);
        mlp__unlock(&g->mutex);
        return;
    }
    for (spin = 0; spin < MLP__SPINS && mlp__atomic_get(&g->barriers) == crossed; spin++) mlp__pause();
    if (mlp__atomic_get(&g->barriers) == crossed) {
        mlp__lock(&g->mutex);
        while (mlp__atomic_get(&g->barriers) == crossed) mlp__cond_wait(&g->crossed, &g->mutex);
        mlp__unlock(&g->mutex);
    }
}

static void mlp__stop_workers(mlp__engine *g)
{
    int i;
    if (!g->n_workers) return;
    mlp__lock(&g->mutex);
    mlp__atomic_set(&g->stop, 1);
    mlp__atomic_add(&g->generation, 1);
    mlp__cond_wake_all(&g->wake);
    mlp__unlock(&g->mutex);
    for (i = 0; i < g->n_workers; i++) mlp__thread_join(g->workers[i]);
    g->n_workers = 0;
}

static int mlp__start_workers(mlp__engine *g)
{
    int i;
    if (mlp__mutex_init(&g->mutex) != 0) return mlp__fail(MLP_ENOMEM, "cannot create a mutex");
    if (mlp__cond_init(&g->wake) != 0) {
        mlp__mutex_destroy(&g->mutex);
        return mlp__fail(MLP_ENOMEM, "cannot create a condition variable");
    }
    if (mlp__cond_init(&g->done) != 0) {
        mlp__cond_destroy(&g->wake);
        mlp__mutex_destroy(&g->mutex);
        return mlp__fail(MLP_ENOMEM, "cannot create a condition variable");
    }
    if (mlp__cond_init(&g->crossed) != 0) {
        mlp__cond_destroy(&g->done);
        mlp__cond_destroy(&g->wake);
        mlp__mutex_destroy(&g->mutex);
        return mlp__fail(MLP_ENOMEM, "cannot create a condition variable");
    }
    g->has_sync = 1;
    for (i = 1; i < g->n_threads; i++) {
        mlp__worker_arg *a = (mlp__worker_arg *)mlp__alloc(1, sizeof *a, 1);
        if (!a) return MLP_ENOMEM;
        a->g = g; a->task = i;
        if (mlp__thread_start(&g->workers[i - 1], a) != 0) {
            MLP_FREE(a);
            return mlp__fail(MLP_ENOMEM, "cannot start thread %d", i);
        }
        g->n_workers++;
    }
    return MLP_OK;
}
#else
static void mlp__barrier(mlp__engine *g, int n) { (void)g; (void)n; }
#endif

/* Runs fn on every thread of g (only on the caller when parallel is 0). */
static void mlp__run(mlp__engine *g, int parallel, mlp__task_fn fn, void *arg)
{
#ifdef MLP__THREADS
    if (parallel && g && g->n_workers) {
        unsigned spin = 0;
        g->fn = fn; g->arg = arg;
        mlp__atomic_set(&g->pending, g->n_workers);
        mlp__lock(&g->mutex);
        mlp__atomic_add(&g->generation, 1);
        mlp__cond_wake_all(&g->wake);
        mlp__unlock(&g->mutex);
        fn(arg, 0, g->n_threads);
        while (mlp__atomic_get(&g->pending) > 0 && spin++ < MLP__SPINS) mlp__pause();
        if (mlp__atomic_get(&g->pending) > 0) {
            mlp__lock(&g->mutex);
            while (mlp__atomic_get(&g->pending) > 0) mlp__cond_wait(&g->done, &g->mutex);
            mlp__unlock(&g->mutex);
        }
        return;
    }
#endif
    (void)g; (void)parallel;
    fn(arg, 0, 1);
}

static void mlp__engine_free(mlp__engine *g)
{
    if (!g) return;
#ifdef MLP__THREADS
    mlp__stop_workers(g);
    if (g->has_sync) {
        mlp__mutex_destroy(&g->mutex);
        mlp__cond_destroy(&g->wake); mlp__cond_destroy(&g->done); mlp__cond_destroy(&g->crossed);
    }
#endif
    MLP_FREE(g->mem);
    MLP_FREE(g);
}

static float *mlp__align64(void *p)
{
    return (float *)(void *)((char *)p + ((64 - (uintptr_t)p % 64) % 64));
}

/* isa must be supported (or AUTO), 1 <= n_threads <= MLP_MAX_THREADS;
   returns NULL when out of memory or threads cannot start */
static mlp__engine *mlp__engine_new(mlp_isa isa, int n_threads)
{
    int t;
    size_t per_thread = MLP__PACK_A_FLOATS + MLP__PACK_B_FLOATS + 32;
    mlp__engine *g = (mlp__engine *)mlp__calloc(1, sizeof *g, 1);
    if (!g) return NULL;
    g->k = mlp__kernels_for(isa == MLP_ISA_AUTO ? mlp_isa_best() : isa);
#ifdef MLP__THREADS
    g->n_threads = n_threads < 1 ? 1 : n_threads > MLP_MAX_THREADS ? MLP_MAX_THREADS : n_threads;
#else
    (void)n_threads;
    g->n_threads = 1;
#endif
    if (g->k->gemm) {
        g->mem = mlp__alloc(per_thread, (size_t)g->n_threads, sizeof(float));
        if (!g->mem) { mlp__engine_free(g); return NULL; }
        for (t = 0; t < g->n_threads; t++) {
            g->pack_a[t] = mlp__align64((float *)g->mem + per_thread * t);
            g->pack_b[t] = mlp__align64(g->pack_a[t] + MLP__PACK_A_FLOATS);
        }
    }
#ifdef MLP__THREADS
    if (g->n_threads > 1 && mlp__start_workers(g) != MLP_OK) { mlp__engine_free(g); return NULL; }
#endif
    return g;
}

/* Work below this many multiply-adds runs on one thread: waking another
   costs more than it saves. */
#define MLP__PARALLEL_MIN_FMA (1 << 18)

typedef struct mlp__gemm_job {
    const mlp__engine *g;
    const mlp__kernel *kern;
    int trans_a, trans_b, M, N, K, split_n;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} mlp__gemm_job;

/* Task t of n takes a contiguous range of whole column panels (or of row
   panels when N is too narrow to share). */
static void mlp__share(int len, int unit, int t, int n, int *begin, int *end)
{
    int units = (len + unit - 1) / unit;
    *begin = (int)((long)units * t / n) * unit;
    *end = (int)((long)units * (t + 1) / n) * unit;
    if (*end > len) *end = len;
}

static void mlp__gemm_task(void *arg, int t, int n)
{
    const mlp__gemm_job *j = (const mlp__gemm_job *)arg;
    int begin, end;
    mlp__share(j->split_n ? j->N : j->M, j->split_n ? j->kern->nr : j->kern->mr, t, n, &begin, &end);
    if (begin >= end) return;
    if (j->split_n)
        mlp__gemm_blocked(j->kern, j->g->pack_a[t], j->g->pack_b[t], j->trans_a, j->trans_b,
                          j->M, end - begin, j->K, j->alpha, j->A, j->lda,
                          j->trans_b ? j->B + (size_t)begin * j->ldb : j->B + begin, j->ldb,
                          j->beta, j->C + begin, j->ldc);
    else
        mlp__gemm_blocked(j->kern, j->g->pack_a[t], j->g->pack_b[t], j->trans_a, j->trans_b,
                          end - begin, j->N, j->K, j->alpha,
                          j->trans_a ? j->A + begin : j->A + (size_t)begin * j->lda, j->lda,
                          j->B, j->ldb, j->beta, j->C + (size_t)begin * j->ldc, j->ldc);
}

/* Task t of n takes a range of 16-column blocks of a batch-1 product: each
   core streams its own part of every weight row, from its own L2. */
static void mlp__gemv_task(void *arg, int t, int n)
{
    const mlp__gemm_job *j = (const mlp__gemm_job *)arg;
    int blocks = (j->N + 15) / 16, begin = (int)((long)blocks * t / n) * 16, end = (int)((long)blocks * (t + 1) / n) * 16;
    if (end > j->N) end = j->N;
    if (begin >= end) return;
    j->g->k->gemv(j->M, end - begin, j->K, j->alpha, j->A, j->lda, j->B + begin, j->ldb, j->beta, j->C + begin, j->ldc);
}


/* Task t of n takes a range of whole row blocks of a narrow product (8
   rows, or 16 with A transposed): each row's arithmetic is the same
   whichever task computes it. */
static void mlp__narrow_task(void *arg, int t, int n)
{
    const mlp__gemm_job *j = (const mlp__gemm_job *)arg;
    int rows = j->trans_a ? 16 : 8;
    int blocks = (j->M + rows - 1) / rows, begin = (int)((long)blocks * t / n) * rows, end = (int)((long)blocks * (t + 1) / n) * rows;
    size_t sa_i = j->trans_a ? 1 : (size_t)j->lda, sa_k = j->trans_a ? (size_t)j->lda : 1;
    if (end > j->M) end = j->M;
    if (begin >= end) return;
    if (j->trans_a && j->g->k->narrow_ta) {
        j->g->k->narrow_ta(end - begin, j->N, j->K, j->alpha, j->A + begin, j->lda, j->B, j->ldb, j->beta,
                           j->C + (size_t)begin * j->ldc, j->ldc);
        return;
    }
    j->g->k->narrow(end - begin, j->N, j->K, j->alpha, j->A + (size_t)begin * sa_i, sa_i, sa_k,
                    j->B, j->ldb, j->beta, j->C + (size_t)begin * j->ldc, j->ldc);
}

/* Whether threads share a product's columns (each then packs all of op(A),
   unless the kernel reads A in place) or its rows (each packs all of
   op(B)): the split that copies less, among those that give every thread
   at least two tiles' worth. */
static int mlp__split_columns(const mlp__engine *g, const mlp__kernel *kern, int trans_a, int M, int N, int K)
{
    int cols_ok = N >= g->n_threads * kern->nr * 2, rows_ok = M >= g->n_threads * kern->mr * 2;
    double copied_by_cols = (trans_a ? kern->micro_at : kern->micro_a) ? 0.0 : (double)M * K;
    double copied_by_rows = (double)K * N;
    if (!cols_ok && !rows_ok) return N >= M;
    return cols_ok && (!rows_ok || copied_by_cols <= copied_by_rows);
}

/* Which kernel computes a product of M rows and N columns (K > 0): the one
   choice, shared by mlp__gemm and mlp__gemm_serial, so that a row range of
   a batch takes the path the whole batch takes. */
typedef enum { MLP__PATH_SCALAR, MLP__PATH_GEMV, MLP__PATH_NARROW, MLP__PATH_BLOCKED } mlp__path;

static mlp__path mlp__gemm_path(const mlp__engine *g, int trans_a, int trans_b, int M, int N)
{
    if (!g || !mlp__micro_for(g->k, N) || !g->pack_a[0]) return MLP__PATH_SCALAR;
    if (g->k->gemv && M <= 2 && !trans_a && !trans_b) return MLP__PATH_GEMV;
    if (g->k->narrow && N <= 16 && !trans_b) return MLP__PATH_NARROW;
    return MLP__PATH_BLOCKED;
}

/* The job of C = alpha op(A) op(B) + beta C and the task function that
   computes a share of it; *worth_sharing says whether the product is big
   enough to wake the other threads. NULL when there is nothing to share:
   an empty product, K = 0 or the scalar path, which are done here and now
   when do_small is set. */
static mlp__task_fn mlp__gemm_plan(mlp__gemm_job *j, mlp__engine *g, int do_small, int trans_a, int trans_b,
                                   int M, int N, int K, float alpha, const float *A, int lda,
                                   const float *B, int ldb, float beta, float *C, int ldc, int *worth_sharing)
{
    mlp__path path = mlp__gemm_path(g, trans_a, trans_b, M, N);
    double fma = (double)M * N * K;
    if (M <= 0 || N <= 0) return NULL;
    if (K <= 0 || path == MLP__PATH_SCALAR) {
        if (do_small && K <= 0) mlp__scale_rows(M, N, beta, C, ldc);
        else if (do_small) mlp__gemm_scalar(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return NULL;
    }
    j->g = g; j->kern = mlp__micro_for(g->k, N); j->trans_a = trans_a; j->trans_b = trans_b;
    j->M = M; j->N = N; j->K = K; j->alpha = alpha; j->beta = beta;
    j->A = A; j->B = B; j->C = C; j->lda = lda; j->ldb = ldb; j->ldc = ldc;
    j->split_n = 0;
    if (path == MLP__PATH_GEMV) { /* the rows of B whose factor is 0 cost nothing (mlp__gemv_avx512) */
        int i, k;
        size_t nonzero = 0; /* an integer count vectorises; a double sum was a 4-cycle chain per input */
        for (i = 0; i < M; i++)
            for (k = 0; k < K; k++) nonzero += A[(size_t)i * lda + k] != 0.0f;
        *worth_sharing = N >= 64 && (double)nonzero * N >= MLP__PARALLEL_MIN_FMA / 4;
        return mlp__gemv_task;
    }
    if (path == MLP__PATH_NARROW) {
        *worth_sharing = M >= 16 && fma >= MLP__PARALLEL_MIN_FMA / 4;
        return mlp__narrow_task;
    }
    j->split_n = mlp__split_columns(g, j->kern, trans_a, M, N, K);
    *worth_sharing = fma >= MLP__PARALLEL_MIN_FMA;
    return mlp__gemm_task;
}

/* The single entry point every layer uses (g == NULL: the scalar kernel). */
static void mlp__gemm(mlp__engine *g, int trans_a, int trans_b,
                      int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    mlp__gemm_job j;
    int worth_sharing;
    mlp__task_fn task = mlp__gemm_plan(&j, g, 1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &worth_sharing);
    if (task) mlp__run(g, worth_sharing, task, &j);
}

/* The columns of an N wide product (or of a layer's N units) that thread t
   of n owns in a training step: the same whole column panels in the
   forward product, the weight gradient and the input gradient below. */
static void mlp__own_columns(const mlp__engine *g, int N, int t, int n, int *c0, int *c1)
{
    const mlp__kernel *kern = mlp__micro_for(g->k, N); /* NULL: the scalar GEMM, no panels */
    mlp__share(N, kern ? kern->nr : 16, t, n, c0, c1);
}

/* Thread t's share of a product inside a parallel region of n threads (a
   training step): with the blocked kernel its columns (mlp__own_columns)
   or its rows (by_rows), otherwise the share mlp__gemm would give it.
   Every element's arithmetic is mlp__gemm's whatever the share. */
static void mlp__gemm_share(mlp__engine *g, int t, int n, int by_rows, int trans_a, int trans_b,
                            int M, int N, int K, float alpha, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc)
{
    mlp__gemm_job j;
    int worth_sharing;
    mlp__task_fn task = mlp__gemm_plan(&j, g, t == 0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                                       &worth_sharing);
    if (!task) return;
    if (task == mlp__gemm_task) j.split_n = !by_rows;
    task(&j, t, n);
}

/* C = alpha A B + beta C (neither transposed) on the calling thread with
   thread t's packing buffers, for a thread of a parallel region that
   computes its own rows of a batch: the path mlp__gemm takes (callers give
   it more than 2 rows, never the batch-1 path), so each row's arithmetic is
   what mlp__gemm gives it on any number of threads. */
static void mlp__gemm_serial(const mlp__engine *g, int t, int M, int N, int K, float alpha,
                             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    mlp__path path = mlp__gemm_path(g, 0, 0, M, N);
    MLP_ASSERT(path != MLP__PATH_GEMV);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) mlp__scale_rows(M, N, beta, C, ldc);
    else if (path == MLP__PATH_SCALAR) mlp__gemm_scalar(0, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (path == MLP__PATH_NARROW) g->k->narrow(M, N, K, alpha, A, (size_t)lda, 1, B, ldb, beta, C, ldc);
    else mlp__gemm_blocked(mlp__micro_for(g->k, N), g->pack_a[t], g->pack_b[t], 0, 0, M, N, K, alpha, A, lda, B, ldb,
                           beta, C, ldc);
}

MLPDEF int mlp_gemm_isa(mlp_isa isa, int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc)
{
    mlp__engine *g;
    int rc;
    if (isa != MLP_ISA_AUTO && !mlp_isa_supported(isa))
        return mlp__fail(MLP_EARG, "instruction set %s is not available here", mlp_isa_name(isa));
    if ((rc = mlp__gemm_args_ok(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc)) != MLP_OK) return rc;
    if (!(g = mlp__engine_new(isa, 1))) return MLP_ENOMEM;
    mlp__gemm(g, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    mlp__engine_free(g);
    return MLP_OK;
}

MLPDEF int mlp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    int rc = mlp_gemm_isa(MLP_ISA_AUTO, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (rc != MLP_ENOMEM) return rc;
    /* no room for packing buffers: the scalar kernel needs none */
    mlp__gemm(NULL, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return MLP_OK;
}

/* ---- the network object ----------------------------------------------- */
/* Layers in order, with views into one block of parameters, one of
   gradients and one of batchnorm statistics; a workspace sized for the
   largest batch seen, so the training loop never allocates. */

typedef enum { MLP_LAYER_DENSE, MLP_LAYER_ACT, MLP_LAYER_DROPOUT, MLP_LAYER_BATCHNORM } mlp_layer_kind;

typedef struct mlp_layer {
    mlp_layer_kind kind;
    int n_in, n_out;
    mlp_act act;          /* MLP_LAYER_ACT only */
    float rate;           /* MLP_LAYER_DROPOUT only: fraction of units dropped */
    float *W, *b;         /* views into mlp_net.params: dense: weights and
                             biases; batchnorm: scale (gamma) and shift (beta) */
    float *dW, *db;       /* the same views into mlp_net.grads */
    /* MLP_LAYER_BATCHNORM only: running mean and variance (inference), the
       batch's 1/sqrt(var + eps) and mean (scratch of the forward pass),
       views into mlp_net.stats */
    float *run_mean, *run_var, *inv_std, *batch_mean;
    float eps, momentum;  /* batchnorm: running = (1 - momentum) running + momentum batch */
} mlp_layer;

/* The network. Its definition is the implementation's own: programs use
   the calls of the API (tests, which see the implementation, may look in). */
struct mlp_net {
    int n_layers;
    mlp_layer *layers;
    mlp_loss loss;
    size_t n_params;
    float *params, *grads, *velocity;  /* velocity (Adam: first moment): allocated by the first step */
    size_t n_stats;                    /* batchnorm: 4 floats per unit (see mlp_layer) */
    float *stats;
    float *second;                     /* Adam's second moment, allocated by its first step */
    uint64_t step;                     /* optimizer steps taken (Adam's bias correction) */
    /* workspace for one batch: outputs and output-gradients of every layer */
    int ws_batch, batch;
    float *ws, **out, **dout;
    const float *x;                    /* input of the last forward pass */
    float *probs;                      /* mlp_predict's output */
    double *row_loss;                  /* a training step's loss of each row (B) */
    struct mlp__engine *engine;        /* kernels, packing buffers, threads */
    int training;                      /* dropout and batch statistics on (mlp_set_training) */
    int batch_stats;                   /* the last forward pass normalised with batch statistics */
    mlp_rng dropout_rng;               /* reseeded per batch by mlp_train_epoch */
    float **aux;                       /* per layer, B x n_out: dropout's mask (0 or
                                          1/(1-rate)), batchnorm's normalised input */
    float *partials;                   /* a training step's products split by inputs: the
                                          blocks of threads other than 0 (mlp__step_forward_by_inputs) */
    size_t partials_size;              /* floats allocated there */
    /* what the input is, stored in model files: network input = raw value *
       input_scale + input_offset (raw MNIST pixels are 0..255); image_w x
       image_h = input width for image models, 0 x 0 otherwise */
    float input_scale, input_offset;
    int image_w, image_h;
    float *col_scale, *col_offset;     /* per-column normalisation after it, or NULL */
    char **class_names;                /* n_out names (one allocation), or NULL */
};

/* A product on the network's engine (its kernel table, packing buffers and
   threads), e.g. for a benchmark that times the products training runs. */
MLPDEF int mlp_gemm_net(mlp_net *net, int trans_a, int trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc)
{
    int rc;
    if (!net) return mlp__fail(MLP_EARG, "mlp_gemm_net: NULL net");
    if ((rc = mlp__gemm_args_ok(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc)) != MLP_OK) return rc;
    mlp__gemm(net->engine, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return MLP_OK;
}

/* ---- activations --------------------------------------------------------- */

static float mlp__sigmoid(float x)
{
    /* never exponentiates a large positive number */
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    else { float e = expf(x); return e / (1.0f + e); }
}


/* y = f(x) elementwise over n values */
static void mlp__act_forward(const mlp__kernels *k, mlp_act act, float *y, const float *x, size_t n)
{
    size_t i;
    switch (act) {
    case MLP_ACT_RELU:    k->relu_forward(y, x, n); break;
    case MLP_ACT_SIGMOID: for (i = 0; i < n; i++) y[i] = mlp__sigmoid(x[i]); break;
    case MLP_ACT_TANH:    for (i = 0; i < n; i++) y[i] = tanhf(x[i]); break;
    case MLP_ACT_IDENTITY: if (y != x) memcpy(y, x, n * sizeof(float)); break;
    }
}

/* dx = dy * f'(x), with f' written in terms of the output y = f(x) */
static void mlp__act_backward(const mlp__kernels *k, mlp_act act, float *dx, const float *dy, const float *y, size_t n)
{
    size_t i;
    switch (act) {
    case MLP_ACT_RELU:    k->relu_backward(dx, dy, y, n); break;
    case MLP_ACT_SIGMOID: for (i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]); break;
    case MLP_ACT_TANH:    for (i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]); break;
    case MLP_ACT_IDENTITY: if (dx != dy) memcpy(dx, dy, n * sizeof(float)); break;
    }
}


/* Inverted dropout: y = x m, m = 0 with probability rate, else 1/(1-rate),
   so the expected output equals x and inference needs no rescaling. rate 0
   (inference) copies. */
static void mlp__dropout_forward(float *y, float *mask, const float *x, size_t n, float rate, mlp_rng *rng)
{
    size_t i;
    float keep = 1.0f / (1.0f - rate);
    if (rate <= 0.0f) { if (y != x) memcpy(y, x, n * sizeof(float)); return; }
    for (i = 0; i < n; i++) {
        mask[i] = mlp_rng_float(rng) < rate ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

/* dx = dy m */
static void mlp__dropout_backward(float *dx, const float *dy, const float *mask, size_t n, float rate)
{
    size_t i;
    if (rate <= 0.0f) { if (dx != dy) memcpy(dx, dy, n * sizeof(float)); return; }
    for (i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}

/* Batch normalisation of B rows of n units (Ioffe and Szegedy, 2015):
   y = gamma (x - mean) / sqrt(var + eps) + beta. With batch statistics the
   mean and (biased) variance are the batch's, and the running averages move
   towards them (the variance unbiased, as in inference it estimates the
   population's); otherwise the running averages are used. xhat keeps
   (x - mean) / sqrt(var + eps) for the backward pass. */
/* The normalisation's per-unit statistics: the batch's (and the running
   averages updated), or at inference 1/sqrt(running variance + eps) beside
   the running mean. Returns the mean to subtract. */
static const float *mlp__batchnorm_stats(const mlp__kernels *k, const mlp_layer *L, const float *x, int B, int batch_stats,
                                        int c0, int c1)
{
    int j;
    float *mean = batch_stats ? L->batch_mean : L->run_mean, *inv = L->inv_std;
    if (batch_stats) {
        float rb = 1.0f / (float)B, unbias = B > 1 ? (float)B / (float)(B - 1) : 1.0f;
        if (c0 < c1) k->bn_moments(mean + c0, inv + c0, x + c0, (size_t)L->n_out, B, (size_t)(c1 - c0), rb);
        for (j = c0; j < c1; j++) {
            float var = inv[j] * rb;
            L->run_mean[j] += L->momentum * (mean[j] - L->run_mean[j]);
            L->run_var[j] += L->momentum * (var * unbias - L->run_var[j]);
            inv[j] = 1.0f / sqrtf(var + L->eps);
        }
    } else {
        for (j = c0; j < c1; j++) inv[j] = 1.0f / sqrtf(L->run_var[j] + L->eps);
    }
    return mean;
}

/* y = gamma xhat + beta with xhat = (x - mean) inv_std, for B rows */
static void mlp__batchnorm_apply(const mlp__kernels *k, const mlp_layer *L, float *y, float *xhat, const float *x, int B,
                                 const float *mean, int c0, int c1)
{
    if (c0 < c1)
        k->bn_apply(y + c0, xhat + c0, x + c0, (size_t)L->n_out, B, (size_t)(c1 - c0), mean + c0, L->inv_std + c0,
                    L->W + c0, L->b + c0);
}

/* Units (columns) c0..c1-1 only: a unit's statistics and output depend on
   its own column alone, so threads can share a layer by columns. */
static void mlp__batchnorm_forward(const mlp__kernels *k, const mlp_layer *L, float *y, float *xhat, const float *x, int B,
                                   int batch_stats, int c0, int c1)
{
    mlp__batchnorm_apply(k, L, y, xhat, x, B, mlp__batchnorm_stats(k, L, x, B, batch_stats, c0, c1), c0, c1);
}

/* dbeta = sum dy, dgamma = sum dy xhat over the batch. With batch
   statistics every input also moved the mean and variance, which gives
   dx = gamma inv (dy - (dbeta + xhat dgamma) / B); with fixed statistics
   dx = gamma inv dy. dx may be NULL (nobody needs it). Units c0..c1-1. */
static void mlp__batchnorm_backward(const mlp__kernels *k, const mlp_layer *L, float *dx, const float *dy, const float *xhat,
                                    int B, int batch_stats, int c0, int c1)
{
    if (c0 < c1)
        k->bn_backward(dx ? dx + c0 : NULL, L->dW + c0, L->db + c0, dy + c0, xhat + c0, (size_t)L->n_out, B,
                       (size_t)(c1 - c0), L->W + c0, L->inv_std + c0, 1.0f / (float)B, batch_stats);
}

/* gamma 1, beta 0: the identity, until training learns otherwise */
static void mlp__batchnorm_reset(mlp_layer *L)
{
    int j;
    for (j = 0; j < L->n_out; j++) {
        L->W[j] = 1.0f; L->b[j] = 0.0f;
        L->run_mean[j] = 0.0f; L->run_var[j] = 1.0f;
    }
}

static int mlp__act_valid(int act)
{
    return act == MLP_ACT_IDENTITY || act == MLP_ACT_RELU ||
           act == MLP_ACT_SIGMOID || act == MLP_ACT_TANH;
}

/* ---- losses -------------------------------------------------------------- */

/* The largest of z[0..n): subtracting it before exp() keeps every exponent
   <= 0, so no overflow whatever the logits. */
static float mlp__max(const float *z, int n)
{
    int j;
    float m = z[0];
    for (j = 1; j < n; j++) if (z[j] > m) m = z[j];
    return m;
}

/* The sum of exp(z[j] - m), the first MLP__EXPS_KEPT terms kept in e for
   the pass that scales them, so that exp() in double runs once per output,
   not twice (an output layer is rarely wider). */
#define MLP__EXPS_KEPT 32

static double mlp__sum_exp_shifted(const float *z, int n, float m, double *e)
{
    int j;
    double s = 0.0;
    for (j = 0; j < n; j++) {
        double x = exp((double)(z[j] - m));
        if (j < MLP__EXPS_KEPT) e[j] = x;
        s += x;
    }
    return s;
}

static double mlp__exp_shifted(const float *z, int j, float m, const double *e)
{
    return j < MLP__EXPS_KEPT ? e[j] : exp((double)(z[j] - m));
}

static void mlp__softmax(float *p, const float *z, int n)
{
    int j;
    double e[MLP__EXPS_KEPT];
    float m = mlp__max(z, n);
    double inv = 1.0 / mlp__sum_exp_shifted(z, n, m, e);
    for (j = 0; j < n; j++) p[j] = (float)(mlp__exp_shifted(z, j, m, e) * inv);
}

/* softmax cross-entropy: L = mean over rows of (logsumexp(z) - z[label]),
   written as (m - z[label]) + log(sum exp(z - m)) so that no large number
   is ever rounded; dL/dz = (softmax(z) - onehot(label)) / B */
static double mlp__ce_row(const float *z, int label, int n, float inv_b, float *dz)
{
    int j;
    double e[MLP__EXPS_KEPT];
    float m = mlp__max(z, n);
    double s = mlp__sum_exp_shifted(z, n, m, e);
    if (dz) {
        double scale = inv_b / s;
        for (j = 0; j < n; j++) dz[j] = (float)(mlp__exp_shifted(z, j, m, e) * scale);
        dz[label] -= inv_b;
    }
    return (double)(m - z[label]) + log(s);
}

/* Euclidean: E = 1/(2B) sum ||t - y||^2 with t = onehot(label); dE/dy = (y - t) / B */
static double mlp__mse_row(const float *y, int label, int n, float inv_b, float *dy)
{
    int j;
    double e = 0.0;
    for (j = 0; j < n; j++) {
        float d = y[j] - (j == label ? 1.0f : 0.0f);
        e += 0.5 * (double)d * (double)d;
        if (dy) dy[j] = d * inv_b;
    }
    return e;
}

static int mlp__check_labels(const int *labels, int B, int n)
{
    int i;
    for (i = 0; i < B; i++)
        if (labels[i] < 0 || labels[i] >= n)
            return mlp__fail(MLP_EARG, "label %d at row %d is outside 0..%d", labels[i], i, n - 1);
    return MLP_OK;
}

/* row i of a batch of B (labels checked): its loss, and its gradient in
   dY's row i (dY optional) */
static double mlp__loss_row(mlp_loss loss, const float *Y, const int *labels, int i, int B, int n, float *dY)
{
    const float *y = Y + (size_t)i * n;
    float *dy = dY ? dY + (size_t)i * n : NULL;
    float inv_b = 1.0f / (float)B;
    return loss == MLP_LOSS_CE ? mlp__ce_row(y, labels[i], n, inv_b, dy) : mlp__mse_row(y, labels[i], n, inv_b, dy);
}

MLPDEF int mlp_loss_eval(mlp_loss loss, const float *Y, const int *labels,
                         int B, int n, float *dY, float *value)
{
    int i, rc;
    double total = 0.0;
    if (!Y || !labels || !value || B <= 0 || n <= 0)
        return mlp__fail(MLP_EARG, "mlp_loss_eval: bad arguments (B=%d, n=%d)", B, n);
    if ((rc = mlp__check_labels(labels, B, n)) != MLP_OK) return rc;
    for (i = 0; i < B; i++) total += mlp__loss_row(loss, Y, labels, i, B, n, dY);
    *value = (float)(total / B);
    return MLP_OK;
}

/* ---- layers and network -------------------------------------------------- */



/* z = x W + b for B rows: x is B x n_in, W is n_in x n_out */
static void mlp__dense_forward(mlp__engine *g, float *z, const float *x, const float *W,
                               const float *b, int B, int n_in, int n_out)
{
    int i;
    for (i = 0; i < B; i++) memcpy(z + (size_t)i * n_out, b, (size_t)n_out * sizeof(float));
    mlp__gemm(g, 0, 0, B, n_out, n_in, 1.0f, x, n_in, W, n_out, 1.0f, z, n_out);
}

/* db[j] = the sum of column j of dz's B rows (leading dimension ld), n columns */
static void mlp__column_sums(const mlp__kernels *k, float *db, const float *dz, size_t ld, int B, size_t n)
{
    memset(db, 0, n * sizeof(float));
    k->add_rows(db, 0, dz, ld, B, n);
}

/* dW = x^T dz, db = column sums of dz, dx = dz W^T (skipped when dx is NULL) */
static void mlp__dense_backward(mlp__engine *g, float *dx, float *dW, float *db,
                                const float *dz, const float *x, const float *W,
                                int B, int n_in, int n_out)
{
    const mlp__kernels *k = g ? g->k : mlp__kernels_for(MLP_ISA_SCALAR);
    mlp__gemm(g, 1, 0, n_in, n_out, B, 1.0f, x, n_in, dz, n_out, 0.0f, dW, n_out);
    mlp__column_sums(k, db, dz, (size_t)n_out, B, (size_t)n_out);
    if (dx) mlp__gemm(g, 0, 1, B, n_in, n_out, 1.0f, dz, n_out, W, n_out, 0.0f, dx, n_in);
}

MLPDEF int mlp_parse_spec(const char *spec, int *sizes, int max_sizes)
{
    int n = 0;
    const char *p = spec;
    if (!spec || !sizes || max_sizes <= 0) return mlp__fail(MLP_EARG, "mlp_parse_spec: bad arguments");
    for (;;) {
        long v = 0;
        if (*p < '0' || *p > '9')
            return mlp__fail(MLP_EARG, "layer spec \"%s\": expected a number at \"%s\"", spec, p);
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            if (v > MLP_MAX_WIDTH)
                return mlp__fail(MLP_EARG, "layer spec \"%s\": width above the limit %d", spec, MLP_MAX_WIDTH);
        }
        if (v < 1) return mlp__fail(MLP_EARG, "layer spec \"%s\": a width of 0", spec);
        if (n == max_sizes)
            return mlp__fail(MLP_EARG, "layer spec \"%s\": more than %d widths", spec, max_sizes);
        sizes[n++] = (int)v;
        if (*p == '\0') break;
        if (*p != '-') return mlp__fail(MLP_EARG, "layer spec \"%s\": unexpected '%c'", spec, *p);
        p++;
    }
    if (n < 2) return mlp__fail(MLP_EARG, "layer spec \"%s\": need at least an input and an output width", spec);
    return n;
}

MLPDEF int mlp_set_isa(mlp_net *net, mlp_isa isa)
{
    mlp__engine *g;
    if (!net) return mlp__fail(MLP_EARG, "mlp_set_isa: NULL net");
    if (isa != MLP_ISA_AUTO && !mlp_isa_supported(isa))
        return mlp__fail(MLP_EARG, "instruction set %s is not available here", mlp_isa_name(isa));
    if (!(g = mlp__engine_new(isa, net->engine->n_threads))) return MLP_ENOMEM;
    mlp__engine_free(net->engine);
    net->engine = g;
    return MLP_OK;
}

MLPDEF int mlp_set_threads(mlp_net *net, int n_threads)
{
    mlp__engine *g;
    if (!net) return mlp__fail(MLP_EARG, "mlp_set_threads: NULL net");
    if (n_threads < 1 || n_threads > MLP_MAX_THREADS)
        return mlp__fail(MLP_EARG, "thread count %d is outside 1..%d", n_threads, MLP_MAX_THREADS);
    if (!(g = mlp__engine_new(net->engine->k->isa, n_threads))) return MLP_ENOMEM;
    mlp__engine_free(net->engine);
    net->engine = g;
    return MLP_OK;
}

MLPDEF int mlp_get_threads(const mlp_net *net) { return net ? net->engine->n_threads : 0; }

MLPDEF mlp_isa mlp_get_isa(const mlp_net *net) { return net ? net->engine->k->isa : MLP_ISA_AUTO; }

MLPDEF int mlp_input_width(const mlp_net *net) { return net ? net->layers[0].n_in : 0; }
MLPDEF int mlp_output_width(const mlp_net *net) { return net ? net->layers[net->n_layers - 1].n_out : 0; }
MLPDEF size_t mlp_param_count(const mlp_net *net) { return net ? net->n_params : 0; }

MLPDEF int mlp_dense_count(const mlp_net *net)
{
    int l, n = 0;
    for (l = 0; net && l < net->n_layers; l++) n += net->layers[l].kind == MLP_LAYER_DENSE;
    return n;
}

MLPDEF int mlp_dense_weights(const mlp_net *net, int i, mlp_mat *W, mlp_mat *b)
{
    int l, seen = 0;
    if (!net) return mlp__fail(MLP_EARG, "mlp_dense_weights: NULL net");
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_DENSE || seen++ != i) continue;
        if (W) *W = mlp_mat_view(L->W, L->n_in, L->n_out, L->n_out);
        if (b) *b = mlp_mat_view(L->b, 1, L->n_out, L->n_out);
        return MLP_OK;
    }
    return mlp__fail(MLP_EARG, "mlp_dense_weights: no dense layer %d (the network has %d)", i, seen);
}

MLPDEF mlp_input mlp_get_input(const mlp_net *net)
{
    mlp_input in;
    in.scale = net ? net->input_scale : 1.0f;
    in.offset = net ? net->input_offset : 0.0f;
    in.image_w = net ? net->image_w : 0;
    in.image_h = net ? net->image_h : 0;
    return in;
}

MLPDEF int mlp_set_input(mlp_net *net, const mlp_input *in)
{
    if (!net || !in) return mlp__fail(MLP_EARG, "mlp_set_input: NULL argument");
    if (!isfinite(in->scale) || !isfinite(in->offset) || in->scale == 0.0f)
        return mlp__fail(MLP_EARG, "mlp_set_input: scale %g, offset %g (need finite, scale nonzero)", in->scale, in->offset);
    if (in->image_w < 0 || in->image_h < 0 || (in->image_w == 0) != (in->image_h == 0) ||
        (in->image_w && (long long)in->image_w * in->image_h != mlp_input_width(net)))
        return mlp__fail(MLP_EARG, "mlp_set_input: image size %d x %d does not match the input width %d",
                         in->image_w, in->image_h, mlp_input_width(net));
    net->input_scale = in->scale; net->input_offset = in->offset;
    net->image_w = in->image_w; net->image_h = in->image_h;
    return MLP_OK;
}

MLPDEF int mlp_set_input_columns(mlp_net *net, const float *scale, const float *offset)
{
    int j, n;
    float *cols;
    if (!net) return mlp__fail(MLP_EARG, "mlp_set_input_columns: NULL net");
    if (!scale != !offset) return mlp__fail(MLP_EARG, "mlp_set_input_columns: give both arrays or neither");
    n = mlp_input_width(net);
    for (j = 0; scale && j < n; j++)
        if (!isfinite(scale[j]) || !isfinite(offset[j]) || scale[j] == 0.0f)
            return mlp__fail(MLP_EARG, "mlp_set_input_columns: column %d has scale %g, offset %g (need finite, scale nonzero)",
                             j, (double)scale[j], (double)offset[j]);
    cols = NULL;
    if (scale) {
        if (!(cols = (float *)mlp__alloc((size_t)n, 2 * sizeof(float), 1))) return MLP_ENOMEM;
        memcpy(cols, scale, (size_t)n * sizeof(float));
        memcpy(cols + n, offset, (size_t)n * sizeof(float));
    }
    MLP_FREE(net->col_scale);
    net->col_scale = cols;
    net->col_offset = cols ? cols + n : NULL;
    return MLP_OK;
}

MLPDEF int mlp_get_input_columns(const mlp_net *net, float *scale, float *offset)
{
    size_t n;
    if (!net || !net->col_scale) return 0;
    n = (size_t)mlp_input_width(net);
    if (scale) memcpy(scale, net->col_scale, n * sizeof(float));
    if (offset) memcpy(offset, net->col_offset, n * sizeof(float));
    return 1;
}

/* A class name's bytes are fine: 1..MLP_MAX_NAME of them, none a control
   character (names are printed one per line and written into C strings). */
static int mlp__name_ok(const char *s, size_t n)
{
    size_t i;
    if (n < 1 || n > MLP_MAX_NAME) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7F) return 0;
    return 1;
}

static int mlp__cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The index of a name that occurs twice in names[0..n), or -1: sorted
   copies compared with their neighbours, so a hostile count cannot make it
   quadratic. -2 when out of memory. */
static int mlp__repeated_name(const char *const *names, int n)
{
    const char **sorted = (const char **)mlp__alloc((size_t)n, sizeof(char *), 1);
    int i, at = -1;
    if (!sorted) return -2;
    memcpy(sorted, names, (size_t)n * sizeof(char *));
    qsort(sorted, (size_t)n, sizeof(char *), mlp__cmp_names);
    for (i = 1; i < n && at < 0; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            for (at = 0; strcmp(names[at], sorted[i]) != 0; at++) {}
    MLP_FREE(sorted);
    return at;
}

/* the bytes n names take in one block: the n pointers, then the strings */
static size_t mlp__names_size(const size_t *lens, int n)
{
    size_t bytes = (size_t)n * sizeof(char *);
    int i;
    for (i = 0; i < n; i++) bytes += lens[i] + 1;
    return bytes;
}

/* n names laid out in mem (mlp__names_size bytes, pointer-aligned); lens[i]
   is the length of names[i], which need not end in a 0 byte */
static char **mlp__names_fill(void *mem, const char *const *names, const size_t *lens, int n)
{
    char **block = (char **)mem;
    size_t at = (size_t)n * sizeof(char *);
    int i;
    for (i = 0; i < n; i++) {
        block[i] = (char *)block + at;
        memcpy(block[i], names[i], lens[i]);
        block[i][lens[i]] = 0;
        at += lens[i] + 1;
    }
    return block;
}

/* n names in an allocation of their own */
static char **mlp__names_block(const char *const *names, const size_t *lens, int n)
{
    void *mem = mlp__alloc(mlp__names_size(lens, n), 1, 1);
    return mem ? mlp__names_fill(mem, names, lens, n) : NULL;
}

MLPDEF int mlp_set_class_names(mlp_net *net, const char *const *names)
{
    int i, n, twice;
    size_t *lens;
    char **block = NULL;
    if (!net) return mlp__fail(MLP_EARG, "mlp_set_class_names: NULL net");
    n = mlp_output_width(net);
    if (names) {
        if (!(lens = (size_t *)mlp__alloc((size_t)n, sizeof(size_t), 1))) return MLP_ENOMEM;
        for (i = 0; i < n; i++)
            if (!names[i] || !mlp__name_ok(names[i], lens[i] = strlen(names[i]))) {
                MLP_FREE(lens);
                return mlp__fail(MLP_EARG, "mlp_set_class_names: name %d is empty, longer than %d bytes or has a control character",
                                 i, MLP_MAX_NAME);
            }
        if ((twice = mlp__repeated_name(names, n)) != -1) {
            MLP_FREE(lens);
            return twice == -2 ? MLP_ENOMEM : mlp__fail(MLP_EARG, "mlp_set_class_names: \"%s\" is there twice", names[twice]);
        }
        block = mlp__names_block(names, lens, n);
        MLP_FREE(lens);
        if (!block) return MLP_ENOMEM;
    }
    MLP_FREE(net->class_names);
    net->class_names = block;
    return MLP_OK;
}

MLPDEF const char *mlp_class_name(const mlp_net *net, int k)
{
    if (!net || !net->class_names || k < 0 || k >= mlp_output_width(net)) return NULL;
    return net->class_names[k];
}

/* the activation that follows dense layer l (identity if none) */
static mlp_act mlp__act_after(const mlp_net *net, int l)
{
    if (l + 1 < net->n_layers && net->layers[l + 1].kind == MLP_LAYER_BATCHNORM) l++;
    if (l + 1 < net->n_layers && net->layers[l + 1].kind == MLP_LAYER_ACT) return net->layers[l + 1].act;
    return MLP_ACT_IDENTITY;
}

MLPDEF int mlp_init_weights(mlp_net *net, mlp_init_kind kind, uint64_t seed)
{
    int l;
    size_t i;
    mlp_rng rng;
    if (!net) return mlp__fail(MLP_EARG, "mlp_init_weights: NULL net");
    if (kind < MLP_INIT_AUTO || kind > MLP_INIT_HE) return mlp__fail(MLP_EARG, "mlp_init_weights: unknown kind %d", (int)kind);
    mlp_rng_seed(&rng, seed, 0x6d6c70u);
    for (l = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        mlp_init_kind k = kind;
        float r;
        if (L->kind == MLP_LAYER_BATCHNORM) mlp__batchnorm_reset(L);
        if (L->kind != MLP_LAYER_DENSE) continue;
        if (k == MLP_INIT_AUTO) k = mlp__act_after(net, l) == MLP_ACT_RELU ? MLP_INIT_HE : MLP_INIT_GLOROT;
        r = k == MLP_INIT_UNIFORM_FANIN ? 1.0f / sqrtf((float)L->n_in)
          : k == MLP_INIT_GLOROT ? sqrtf(6.0f / (float)(L->n_in + L->n_out))
          : sqrtf(6.0f / (float)L->n_in);
        for (i = 0; i < (size_t)L->n_in * (size_t)L->n_out; i++) L->W[i] = mlp__rng_uniform(&rng, -r, r);
        for (i = 0; i < (size_t)L->n_out; i++) L->b[i] = 0.0f;
    }
    if (net->velocity) memset(net->velocity, 0, net->n_params * sizeof(float));
    if (net->second) memset(net->second, 0, net->n_params * sizeof(float));
    net->step = 0;
    return MLP_OK;
}

/* The model file holds exactly what a clone has, so a clone is a model
   written to memory and read back. */
MLPDEF mlp_net *mlp_clone(const mlp_net *net)
{
    size_t size;
    void *buf;
    mlp_net *copy;
    if (!net) { mlp__fail(MLP_EARG, "mlp_clone: NULL net"); return NULL; }
    if (mlp_save_memory(net, NULL, 0, &size) != MLP_OK || !(buf = mlp__alloc(size, 1, 1))) return NULL;
    copy = mlp_save_memory(net, buf, size, &size) == MLP_OK ? mlp_load_memory(buf, size) : NULL;
    MLP_FREE(buf);
    if (copy && mlp_set_isa(copy, mlp_get_isa(net)) != MLP_OK) { mlp_free(copy); return NULL; }
    return copy;
}

MLPDEF int mlp_copy_weights(mlp_net *dst, const mlp_net *src)
{
    int l;
    if (!dst || !src) return mlp__fail(MLP_EARG, "mlp_copy_weights: NULL net");
    if (dst->n_layers != src->n_layers || dst->n_params != src->n_params || dst->n_stats != src->n_stats)
        return mlp__fail(MLP_EARG, "mlp_copy_weights: the networks have different layers");
    for (l = 0; l < src->n_layers; l++)
        if (dst->layers[l].kind != src->layers[l].kind || dst->layers[l].n_in != src->layers[l].n_in ||
            dst->layers[l].n_out != src->layers[l].n_out || dst->layers[l].act != src->layers[l].act)
            return mlp__fail(MLP_EARG, "mlp_copy_weights: the networks differ at layer %d", l);
    if (dst == src) return MLP_OK;
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    if (src->n_stats) memcpy(dst->stats, src->stats, src->n_stats * sizeof(float));
    return MLP_OK;
}

MLPDEF void mlp_free(mlp_net *net)
{
    if (!net) return;
    MLP_FREE(net->layers);
    mlp__free64(net->params);
    mlp__free64(net->grads);
    MLP_FREE(net->stats);
    mlp__free64(net->velocity);
    mlp__free64(net->second);
    mlp__free64(net->ws);
    mlp__free64(net->partials);
    MLP_FREE(net->out);
    MLP_FREE(net->dout);
    MLP_FREE(net->probs);
    MLP_FREE(net->row_loss);
    MLP_FREE(net->aux);
    MLP_FREE(net->col_scale);
    MLP_FREE(net->class_names);
    mlp__engine_free(net->engine);
    MLP_FREE(net);
}

/* Lays every layer's parameters out in one block, W (or gamma) then b (or
   beta) layer by layer, the gradient block at the same offsets, and the
   batchnorm statistics in a third. Layers that had parameters keep their
   values; new batchnorm layers start as the identity. The optimizer state
   no longer matches the layout and is dropped. */
static int mlp__layout_params(mlp_net *net)
{
    size_t n_params = 0, n_stats = 0, off = 0, st = 0;
    float *params, *grads, *stats;
    int l;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind == MLP_LAYER_DENSE) n_params += (size_t)L->n_in * L->n_out + (size_t)L->n_out;
        if (L->kind == MLP_LAYER_BATCHNORM) { n_params += 2 * (size_t)L->n_out; n_stats += 4 * (size_t)L->n_out; }
    }
    params = (float *)mlp__calloc64(n_params, sizeof(float), 1);
    grads = (float *)mlp__calloc64(n_params, sizeof(float), 1);
    stats = n_stats ? (float *)mlp__calloc(n_stats, sizeof(float), 1) : NULL;
    if (!params || !grads || (n_stats && !stats)) { mlp__free64(params); mlp__free64(grads); MLP_FREE(stats); return MLP_ENOMEM; }
    for (l = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        size_t nw = L->kind == MLP_LAYER_DENSE ? (size_t)L->n_in * L->n_out : (size_t)L->n_out, nb = (size_t)L->n_out;
        int fresh = !L->W;
        if (L->kind != MLP_LAYER_DENSE && L->kind != MLP_LAYER_BATCHNORM) continue;
        if (!fresh) { memcpy(params + off, L->W, nw * sizeof(float)); memcpy(params + off + nw, L->b, nb * sizeof(float)); }
        L->W = params + off; L->dW = grads + off; off += nw;
        L->b = params + off; L->db = grads + off; off += nb;
        if (L->kind == MLP_LAYER_BATCHNORM) {
            float *old_mean = L->run_mean, *old_var = L->run_var;
            L->run_mean = stats + st; L->run_var = stats + st + nb;
            L->inv_std = stats + st + 2 * nb; L->batch_mean = stats + st + 3 * nb;
            st += 4 * nb;
            if (fresh) mlp__batchnorm_reset(L);
            else { memcpy(L->run_mean, old_mean, nb * sizeof(float)); memcpy(L->run_var, old_var, nb * sizeof(float)); }
        }
    }
    MLP_ASSERT(off == n_params && st == n_stats); /* the two passes laid out the same layers */
    mlp__free64(net->params); mlp__free64(net->grads); MLP_FREE(net->stats);
    mlp__free64(net->velocity); mlp__free64(net->second);
    net->params = params; net->grads = grads; net->stats = stats;
    net->n_params = n_params; net->n_stats = n_stats;
    net->velocity = net->second = NULL;
    net->step = 0;
    return MLP_OK;
}

MLPDEF mlp_net *mlp_create(int n_sizes, const int *sizes, const mlp_act *acts,
                           mlp_loss loss, uint64_t seed)
{
    int i, l = 0;
    mlp_net *net;
    if (!sizes || !acts) { mlp__fail(MLP_EARG, "mlp_create: NULL sizes or activations"); return NULL; }
    if (n_sizes < 2 || n_sizes > MLP_MAX_LAYERS + 1) {
        mlp__fail(MLP_EARG, "mlp_create: %d widths (need 2..%d)", n_sizes, MLP_MAX_LAYERS + 1);
        return NULL;
    }
    for (i = 0; i < n_sizes; i++)
        if (sizes[i] < 1 || sizes[i] > MLP_MAX_WIDTH) {
            mlp__fail(MLP_EARG, "mlp_create: width %d of layer %d is outside 1..%d", sizes[i], i, MLP_MAX_WIDTH);
            return NULL;
        }
    for (i = 0; i + 1 < n_sizes; i++)
        if (!mlp__act_valid(acts[i])) { mlp__fail(MLP_EARG, "mlp_create: unknown activation %d", (int)acts[i]); return NULL; }
    if (loss != MLP_LOSS_CE && loss != MLP_LOSS_MSE) { mlp__fail(MLP_EARG, "mlp_create: unknown loss %d", (int)loss); return NULL; }
    if (loss == MLP_LOSS_CE && sizes[n_sizes - 1] < 2) { mlp__fail(MLP_EARG, "mlp_create: cross-entropy needs at least 2 outputs"); return NULL; }

    net = (mlp_net *)mlp__calloc(1, sizeof *net, 1);
    if (!net) return NULL;
    net->loss = loss;
    net->layers = (mlp_layer *)mlp__calloc((size_t)(2 * (n_sizes - 1)), sizeof(mlp_layer), 1);
    if (!net->layers) { mlp_free(net); return NULL; }
    for (i = 0; i + 1 < n_sizes; i++) {
        mlp_layer *D = &net->layers[l++];
        D->kind = MLP_LAYER_DENSE; D->n_in = sizes[i]; D->n_out = sizes[i + 1];
        if (acts[i] != MLP_ACT_IDENTITY) {
            mlp_layer *A = &net->layers[l++];
            A->kind = MLP_LAYER_ACT; A->act = acts[i]; A->n_in = A->n_out = sizes[i + 1];
        }
    }
    net->n_layers = l;
    net->input_scale = 1.0f;
    if (mlp__layout_params(net) != MLP_OK || !(net->engine = mlp__engine_new(MLP_ISA_AUTO, 1))) { mlp_free(net); return NULL; }
    mlp_init_weights(net, MLP_INIT_AUTO, seed);
    return net;
}

MLPDEF mlp_net *mlp_create_spec(const char *spec, mlp_act hidden_act, mlp_loss loss, uint64_t seed)
{
    int sizes[MLP_MAX_LAYERS + 1], i, n;
    mlp_act acts[MLP_MAX_LAYERS];
    n = mlp_parse_spec(spec, sizes, MLP_MAX_LAYERS + 1);
    if (n < 0) return NULL;
    for (i = 0; i + 1 < n; i++) acts[i] = i + 2 < n ? hidden_act : MLP_ACT_IDENTITY;
    return mlp_create(n, sizes, acts, loss, seed);
}

MLPDEF void mlp_set_training(mlp_net *net, int training)
{
    if (net) net->training = training != 0;
}

/* Rebuilds the layer list with dropout layers in place. Parameters are
   untouched: the dense layers' views into them move with the layers. */
MLPDEF int mlp_add_dropout(mlp_net *net, float input_rate, float hidden_rate)
{
    int l, n = 0, extra = 0;
    mlp_layer *layers;
    if (!net) return mlp__fail(MLP_EARG, "mlp_add_dropout: NULL net");
    if (!(input_rate >= 0.0f && input_rate < 1.0f) || !(hidden_rate >= 0.0f && hidden_rate < 1.0f))
        return mlp__fail(MLP_EARG, "dropout rates must be in [0, 1)");
    for (l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == MLP_LAYER_DROPOUT) return mlp__fail(MLP_EARG, "the network already has dropout");
    extra = net->n_layers + 1;
    if (!(layers = (mlp_layer *)mlp__calloc((size_t)(net->n_layers + extra), sizeof(mlp_layer), 1))) return MLP_ENOMEM;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        int before_dense = L->kind == MLP_LAYER_DENSE;
        float rate = l == 0 ? input_rate : hidden_rate;
        /* before a dense layer that follows the input or a hidden activation */
        if (before_dense && rate > 0.0f && (l == 0 || net->layers[l - 1].kind == MLP_LAYER_ACT)) {
            mlp_layer *D = &layers[n++];
            D->kind = MLP_LAYER_DROPOUT; D->rate = rate; D->n_in = D->n_out = L->n_in;
        }
        layers[n++] = *L;
    }
    MLP_FREE(net->layers);
    net->layers = layers;
    net->n_layers = n;
    net->ws_batch = 0; /* the workspace layout changed */
    return MLP_OK;
}

/* Inserts a batchnorm layer after dense layer d wherever after_dense[d]
   (dense layers counted from 0) and re-lays the parameters. */
static int mlp__insert_batchnorm(mlp_net *net, const int *after_dense)
{
    int l, n = 0, d = 0, old_n = net->n_layers, rc;
    mlp_layer *layers, *old = net->layers;
    for (l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == MLP_LAYER_BATCHNORM) return mlp__fail(MLP_EARG, "the network already has batch normalisation");
    if (!(layers = (mlp_layer *)mlp__calloc((size_t)(2 * net->n_layers), sizeof(mlp_layer), 1))) return MLP_ENOMEM;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        layers[n++] = *L;
        if (L->kind == MLP_LAYER_DENSE && after_dense[d++]) {
            mlp_layer *N = &layers[n++];
            N->kind = MLP_LAYER_BATCHNORM; N->n_in = N->n_out = L->n_out;
            N->eps = 1e-5f; N->momentum = 0.1f;
        }
    }
    net->layers = layers; net->n_layers = n;
    if ((rc = mlp__layout_params(net)) != MLP_OK) { /* the old layout is intact */
        net->layers = old; net->n_layers = old_n;
        MLP_FREE(layers);
        return rc;
    }
    MLP_FREE(old);
    net->ws_batch = 0; /* the workspace layout changed */
    return MLP_OK;
}

MLPDEF int mlp_add_batchnorm(mlp_net *net)
{
    int l, d = 0, hidden[MLP_MAX_LAYERS];
    if (!net) return mlp__fail(MLP_EARG, "mlp_add_batchnorm: NULL net");
    for (l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == MLP_LAYER_DENSE) hidden[d++] = 1;
    hidden[d - 1] = 0; /* the output layer's logits stay free */
    return mlp__insert_batchnorm(net, hidden);
}

/* Makes room for batches of up to B rows: one block holds every layer's
   output and output-gradient, so the training loop never allocates. */
static int mlp__reserve(mlp_net *net, int B)
{
    int l;
    size_t total = 0, off = 0;
    if (B <= net->ws_batch) return MLP_OK;
    for (l = 0; l < net->n_layers; l++)
        total += (net->layers[l].kind == MLP_LAYER_DROPOUT || net->layers[l].kind == MLP_LAYER_BATCHNORM ? 3 : 2)
                 * (size_t)net->layers[l].n_out;
    mlp__free64(net->ws); MLP_FREE(net->out); MLP_FREE(net->dout); MLP_FREE(net->probs); MLP_FREE(net->aux); MLP_FREE(net->row_loss);
    net->ws_batch = 0;
    net->ws = (float *)mlp__calloc64(total, (size_t)B, sizeof(float));
    net->out = (float **)mlp__alloc((size_t)net->n_layers, sizeof(float *), 1);
    net->dout = (float **)mlp__alloc((size_t)net->n_layers, sizeof(float *), 1);
    net->aux = (float **)mlp__calloc((size_t)net->n_layers, sizeof(float *), 1);
    net->probs = (float *)mlp__alloc((size_t)mlp_output_width(net), (size_t)B, sizeof(float));
    net->row_loss = (double *)mlp__alloc((size_t)B, sizeof(double), 1);
    if (!net->ws || !net->out || !net->dout || !net->aux || !net->probs || !net->row_loss) return MLP_ENOMEM;
    for (l = 0; l < net->n_layers; l++) {
        size_t n = (size_t)net->layers[l].n_out * (size_t)B;
        net->out[l] = net->ws + off; off += n;
        net->dout[l] = net->ws + off; off += n;
        if (net->layers[l].kind == MLP_LAYER_DROPOUT || net->layers[l].kind == MLP_LAYER_BATCHNORM) { net->aux[l] = net->ws + off; off += n; }
    }
    net->ws_batch = B;
    return MLP_OK;
}

/* ---- forward ------------------------------------------------------------- */

/* Inference on a batch big enough to share: one parallel region in which
   each thread runs every layer (and the softmax) on its own rows, instead
   of a region per product in which every thread packs the same operands.
   Each row's arithmetic is the layer-by-layer path's, so results do not
   depend on the thread count. */
#define MLP__SHARED_ROWS_MIN 16 /* rows per thread, at least */

typedef struct mlp__rows_job { mlp_net *net; const float *X; int B, probs; } mlp__rows_job;

static void mlp__forward_rows_task(void *arg, int t, int n)
{
    const mlp__rows_job *j = (const mlp__rows_job *)arg;
    mlp_net *net = j->net;
    int l, i, units = (j->B + 7) / 8, r0 = (int)((long)units * t / n) * 8, r1 = (int)((long)units * (t + 1) / n) * 8;
    int rows, w = mlp_output_width(net);
    const float *x;
    if (r1 > j->B) r1 = j->B;
    if (r0 >= r1) return;
    rows = r1 - r0;
    x = j->X + (size_t)r0 * net->layers[0].n_in;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        float *y = net->out[l] + (size_t)r0 * L->n_out;
        if (L->kind == MLP_LAYER_DENSE) {
            for (i = 0; i < rows; i++) memcpy(y + (size_t)i * L->n_out, L->b, (size_t)L->n_out * sizeof(float));
            mlp__gemm_serial(net->engine, t, rows, L->n_out, L->n_in, 1.0f, x, L->n_in, L->W, L->n_out, 1.0f, y, L->n_out);
        } else if (L->kind == MLP_LAYER_DROPOUT) {
            memcpy(y, x, (size_t)rows * L->n_out * sizeof(float));
        } else if (L->kind == MLP_LAYER_BATCHNORM) { /* inv_std was set before the region */
            mlp__batchnorm_apply(net->engine->k, L, y, net->aux[l] + (size_t)r0 * L->n_out, x, rows, L->run_mean, 0, L->n_out);
        } else {
            mlp__act_forward(net->engine->k, L->act, y, x, (size_t)rows * L->n_out);
        }
        x = y;
    }
    if (j->probs)
        for (i = 0; i < rows; i++) mlp__softmax(net->probs + (size_t)(r0 + i) * w, x + (size_t)i * w, w);
}

/* The forward pass; with probs, also the softmax into net->probs. */
static const float *mlp__forward(mlp_net *net, const float *X, int B, int probs)
{
    int l, i, w;
    const float *x = X;
    if (!net || !X || B <= 0 || B > MLP_MAX_BATCH) { mlp__fail(MLP_EARG, "mlp_forward: bad arguments (B=%d, limit %d)", B, MLP_MAX_BATCH); return NULL; }
    if (mlp__reserve(net, B) != MLP_OK) return NULL;
    net->x = X;
    net->batch = B;
    net->batch_stats = net->training;
    w = mlp_output_width(net);
    if (!net->training && net->engine->n_threads > 1 && B >= MLP__SHARED_ROWS_MIN * net->engine->n_threads) {
        mlp__rows_job j;
        for (l = 0; l < net->n_layers; l++)
            if (net->layers[l].kind == MLP_LAYER_BATCHNORM) (void)mlp__batchnorm_stats(net->engine->k, &net->layers[l], NULL, 0, 0, 0, net->layers[l].n_out);
        j.net = net; j.X = X; j.B = B; j.probs = probs;
        mlp__run(net->engine, 1, mlp__forward_rows_task, &j);
        return probs ? net->probs : net->out[net->n_layers - 1];
    }
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind == MLP_LAYER_DENSE) mlp__dense_forward(net->engine, net->out[l], x, L->W, L->b, B, L->n_in, L->n_out);
        else if (L->kind == MLP_LAYER_DROPOUT)
            mlp__dropout_forward(net->out[l], net->aux[l], x, (size_t)B * L->n_out, net->training ? L->rate : 0.0f, &net->dropout_rng);
        else if (L->kind == MLP_LAYER_BATCHNORM)
            mlp__batchnorm_forward(net->engine->k, L, net->out[l], net->aux[l], x, B, net->training, 0, L->n_out);
        else mlp__act_forward(net->engine->k, L->act, net->out[l], x, (size_t)B * L->n_out);
        x = net->out[l];
    }
    if (!probs) return x;
    for (i = 0; i < B; i++) mlp__softmax(net->probs + (size_t)i * w, x + (size_t)i * w, w);
    return net->probs;
}

MLPDEF const float *mlp_forward(mlp_net *net, const float *X, int B)
{
    return mlp__forward(net, X, B, 0);
}

MLPDEF const float *mlp_predict(mlp_net *net, const float *X, int B)
{
    return mlp__forward(net, X, B, net && net->loss == MLP_LOSS_CE);
}

MLPDEF int mlp_predict_mat(mlp_net *net, const mlp_mat *X, mlp_mat *P)
{
    const float *p;
    if (!net || !X || !P || !X->data) return mlp__fail(MLP_EARG, "mlp_predict_mat: NULL argument");
    if (X->cols != mlp_input_width(net) || X->stride != X->cols)
        return mlp__fail(MLP_EARG, "mlp_predict_mat: %d x %d inputs (stride %d) for a network of input width %d",
                         X->rows, X->cols, X->stride, mlp_input_width(net));
    if (X->rows > MLP_MAX_BATCH) return mlp__fail(MLP_EARG, "mlp_predict_mat: %d rows (at most %d)", X->rows, MLP_MAX_BATCH);
    if (!(p = mlp_predict(net, X->data, X->rows))) return MLP_ENOMEM; /* the arguments were checked above */
    *P = mlp_mat_view((float *)p, X->rows, mlp_output_width(net), mlp_output_width(net));
    return MLP_OK;
}

/* ---- backward ------------------------------------------------------------ */

/* Backpropagation of the last forward pass's B rows as part of a batch of
   global_batch: the output gradient of the B rows' mean loss is scaled by
   B / global_batch (not at all when they are the whole batch). */
static int mlp__backward(mlp_net *net, const int *labels, int global_batch, float *loss)
{
    int l, B, last, rc;
    float value;
    if (!net || !labels || !net->x) return mlp__fail(MLP_EARG, "mlp_backward: no forward pass or NULL labels");
    B = net->batch;
    last = net->n_layers - 1;
    if (global_batch < B || global_batch > MLP_MAX_BATCH)
        return mlp__fail(MLP_EARG, "mlp_backward_slice: a global batch of %d rows for a slice of %d (at most %d)", global_batch, B, MLP_MAX_BATCH);
    if (mlp__check_labels(labels, B, mlp_output_width(net)) != MLP_OK) return MLP_EARG;
    if ((rc = mlp_loss_eval(net->loss, net->out[last], labels, B, mlp_output_width(net), net->dout[last], &value)) != MLP_OK)
        return rc;
    if (loss) *loss = value;
    if (!isfinite(value)) return mlp__fail(MLP_ENUMERIC, "the loss is %g", value);
    if (global_batch != B) {
        size_t i, n = (size_t)B * (size_t)mlp_output_width(net);
        float share = (float)B / (float)global_batch;
        for (i = 0; i < n; i++) net->dout[last][i] *= share;
    }
    for (l = last; l >= 0; l--) {
        const mlp_layer *L = &net->layers[l];
        const float *x = l > 0 ? net->out[l - 1] : net->x;
        float *dx = l > 0 ? net->dout[l - 1] : NULL; /* nobody needs dL/dX */
        if (L->kind == MLP_LAYER_DENSE)
            mlp__dense_backward(net->engine, dx, L->dW, L->db, net->dout[l], x, L->W, B, L->n_in, L->n_out);
        else if (dx && L->kind == MLP_LAYER_DROPOUT)
            mlp__dropout_backward(dx, net->dout[l], net->aux[l], (size_t)B * L->n_out, net->training ? L->rate : 0.0f);
        else if (L->kind == MLP_LAYER_BATCHNORM)
            mlp__batchnorm_backward(net->engine->k, L, dx, net->dout[l], net->aux[l], B, net->batch_stats, 0, L->n_out);
        else if (dx)
            mlp__act_backward(net->engine->k, L->act, dx, net->dout[l], net->out[l], (size_t)B * L->n_out);
    }
    return MLP_OK;
}

MLPDEF int mlp_backward(mlp_net *net, const int *labels, float *loss)
{
    return mlp__backward(net, labels, net ? net->batch : 0, loss);
}

MLPDEF int mlp_backward_slice(mlp_net *net, const int *labels, int global_batch, float *loss_sum)
{
    float mean = 0.0f;
    int rc = mlp__backward(net, labels, global_batch, &mean);
    if (loss_sum) *loss_sum = mean * (float)(net ? net->batch : 0);
    return rc;
}

MLPDEF float *mlp_gradients(mlp_net *net, size_t *n)
{
    if (n) *n = net ? net->n_params : 0;
    return net ? net->grads : NULL;
}

MLPDEF size_t mlp_get_running_stats(const mlp_net *net, float *stats)
{
    int l;
    size_t at = 0;
    for (l = 0; net && l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        size_t bytes = (size_t)L->n_out * sizeof(float);
        if (L->kind != MLP_LAYER_BATCHNORM) continue;
        if (stats) { memcpy(stats + at, L->run_mean, bytes); memcpy(stats + at + L->n_out, L->run_var, bytes); }
        at += 2 * (size_t)L->n_out;
    }
    return at;
}

MLPDEF int mlp_set_running_stats(mlp_net *net, const float *stats)
{
    int l;
    size_t i, at = 0, n = mlp_get_running_stats(net, NULL);
    if (!net || (!stats && n)) return mlp__fail(MLP_EARG, "mlp_set_running_stats: NULL argument");
    for (i = 0; i < n; i++)
        if (!isfinite(stats[i])) return mlp__fail(MLP_EARG, "mlp_set_running_stats: statistic %lu is %g", (unsigned long)i, stats[i]);
    for (l = 0; l < net->n_layers; l++) { /* every variance checked before anything changes */
        const mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_BATCHNORM) continue;
        for (i = 0; i < (size_t)L->n_out; i++)
            if (stats[at + L->n_out + i] < 0.0f) return mlp__fail(MLP_EARG, "mlp_set_running_stats: variance %g < 0", stats[at + L->n_out + i]);
        at += 2 * (size_t)L->n_out;
    }
    for (l = 0, at = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_BATCHNORM) continue;
        memcpy(L->run_mean, stats + at, (size_t)L->n_out * sizeof(float));
        memcpy(L->run_var, stats + at + L->n_out, (size_t)L->n_out * sizeof(float));
        at += 2 * (size_t)L->n_out;
    }
    return MLP_OK;
}

/* ---- optimizers ---------------------------------------------------------- */

/* The optimizer's per-parameter state, allocated by its first step. */
static int mlp__ensure_state(mlp_net *net, int second)
{
    if (!net->velocity && !(net->velocity = (float *)mlp__calloc64(net->n_params, sizeof(float), 1))) return MLP_ENOMEM;
    if (second && !net->second && !(net->second = (float *)mlp__calloc64(net->n_params, sizeof(float), 1))) return MLP_ENOMEM;
    return MLP_OK;
}

/* Weight decay pulls dense weights (part 0) towards 0; biases and
   batchnorm's scale and shift are left free. */
static int mlp__decays(const mlp_layer *L, int part)
{
    return part == 0 && L->kind == MLP_LAYER_DENSE;
}



typedef struct mlp__update_job {
    mlp_net *net;
    mlp_optimizer optimizer;
    float lr, momentum, weight_decay;
    mlp__adam_param adam;
    int bad[MLP_MAX_THREADS];   /* per task: a non-finite update was seen */
} mlp__update_job;

static float mlp__update_block(const mlp__update_job *j, size_t o, size_t n, float wd)
{
    mlp_net *net = j->net;
    float *w = net->params + o, *v = net->velocity + o;
    const float *dw = net->grads + o;
    const mlp__kernels *k = net->engine->k;
    switch (j->optimizer) {
    case MLP_OPT_SGD:      return k->sgd(w, dw, v, n, j->lr, j->momentum, wd);
    case MLP_OPT_NESTEROV: return k->nesterov(w, dw, v, n, j->lr, j->momentum, wd);
    default:               return k->adam(w, dw, v, net->second + o, n, &j->adam, wd);
    }
}

/* Task t updates the t-th slice of every parameter block. Slice bounds are
   multiples of 16 floats, so every element takes the same (vector or tail)
   arithmetic whatever the thread count. */
static void mlp__update_layer_slice(mlp__update_job *j, const mlp_layer *L, int t, int n, int bias_only)
{
    size_t sizes[2], offs[2];
    int part;
    if (!L->W) return;
    sizes[0] = (size_t)(L->b - L->W); offs[0] = (size_t)(L->W - j->net->params);
    sizes[1] = (size_t)L->n_out;     offs[1] = (size_t)(L->b - j->net->params);
    for (part = bias_only; part < 2; part++) {
        size_t chunks = (sizes[part] + 15) / 16;
        size_t begin = chunks * (size_t)t / (size_t)n * 16, end = chunks * (size_t)(t + 1) / (size_t)n * 16;
        float sum;
        if (end > sizes[part]) end = sizes[part];
        if (begin >= end) continue;
        sum = mlp__update_block(j, offs[part] + begin, end - begin, mlp__decays(L, part) ? j->weight_decay : 0.0f);
        if (!isfinite(sum)) j->bad[t] = 1;
    }
}

static void mlp__update_task(void *arg, int t, int n)
{
    mlp__update_job *j = (mlp__update_job *)arg;
    int l;
    for (l = 0; l < j->net->n_layers; l++) mlp__update_layer_slice(j, &j->net->layers[l], t, n, 0);
}

static int mlp__update(mlp_net *net, mlp__update_job *j)
{
    int t;
    j->net = net;
    mlp__run(net->engine, net->n_params >= MLP__PARALLEL_MIN_FMA / 4, mlp__update_task, j);
    for (t = 0; t < MLP_MAX_THREADS; t++)
        if (j->bad[t]) return mlp__fail(MLP_ENUMERIC, "a gradient or weight became NaN or infinite");
    return MLP_OK;
}

MLPDEF int mlp_sgd_step(mlp_net *net, float lr, float momentum, float weight_decay)
{
    mlp__update_job j;
    if (!net) return mlp__fail(MLP_EARG, "mlp_sgd_step: NULL net");
    if (!(lr >= 0.0f) || !(momentum >= 0.0f) || !(weight_decay >= 0.0f))
        return mlp__fail(MLP_EARG, "mlp_sgd_step: lr, momentum and weight decay must be >= 0");
    if (mlp__ensure_state(net, 0) != MLP_OK) return MLP_ENOMEM;
    memset(&j, 0, sizeof j);
    j.optimizer = MLP_OPT_SGD; j.lr = lr; j.momentum = momentum; j.weight_decay = weight_decay;
    return mlp__update(net, &j);
}

MLPDEF mlp_train_config mlp_train_defaults(void)
{
    mlp_train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 64;
    c.lr = 0.05f;
    c.momentum = 0.9f;
    c.weight_decay = 0.0f;
    c.lr_decay = 0.5f;
    c.lr_step = 3;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.lr_scale = 1.0f;
    c.seed = 1;
    c.diverge_factor = 50.0f;
    return c;
}

/* A zeroed config trains: the fields whose zero would mean nothing take
   their defaults; momentum, weight decay and the others keep the zero they
   say (momentum 0 is plain SGD). */
static mlp_train_config mlp__with_defaults(const mlp_train_config *cfg)
{
    mlp_train_config c = *cfg, d = mlp_train_defaults();
    if (c.batch == 0) c.batch = d.batch;
    if (c.lr == 0.0f) c.lr = d.lr;
    if (c.lr_decay == 0.0f) c.lr_decay = d.lr_decay;
    if (c.lr_step == 0) c.lr_step = d.lr_step;
    if (c.beta1 == 0.0f) c.beta1 = d.beta1;
    if (c.beta2 == 0.0f) c.beta2 = d.beta2;
    if (c.eps == 0.0f) c.eps = d.eps;
    if (c.lr_scale == 0.0f) c.lr_scale = d.lr_scale;
    if (c.diverge_factor == 0.0f) c.diverge_factor = d.diverge_factor;
    return c;
}

static int mlp__check_config(const mlp_train_config *cfg)
{
    if (cfg->batch < 1 || cfg->batch > MLP_MAX_BATCH) return mlp__fail(MLP_EARG, "batch size %d is outside 1..%d", cfg->batch, MLP_MAX_BATCH);
    if (!(cfg->lr >= 0.0f) || !(cfg->momentum >= 0.0f) || !(cfg->weight_decay >= 0.0f) || !(cfg->lr_decay > 0.0f))
        return mlp__fail(MLP_EARG, "learning rate, momentum and weight decay must be >= 0 and lr decay > 0");
    if (cfg->optimizer < MLP_OPT_SGD || cfg->optimizer > MLP_OPT_ADAMW) return mlp__fail(MLP_EARG, "unknown optimizer %d", (int)cfg->optimizer);
    if (cfg->schedule < MLP_SCHEDULE_STEP || cfg->schedule > MLP_SCHEDULE_COSINE) return mlp__fail(MLP_EARG, "unknown schedule %d", (int)cfg->schedule);
    if ((cfg->optimizer >= MLP_OPT_ADAM) && (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f) || !(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f) || !(cfg->eps > 0.0f)))
        return mlp__fail(MLP_EARG, "Adam needs 0 <= beta1, beta2 < 1 and eps > 0");
    if (!(cfg->clip_norm >= 0.0f) || !(cfg->max_norm >= 0.0f)) return mlp__fail(MLP_EARG, "clip and max norms must be >= 0");
    if (isnan(cfg->diverge_factor)) return mlp__fail(MLP_EARG, "diverge_factor is NaN");
    return MLP_OK;
}

/* The divergence watch of mlp_train_epoch (mlp_train_config.diverge_factor):
   a moving average of the batch losses (weight 1/16 for the newest, so one
   bad batch alone does not stop a run), and the ReLU layers' activity. */
typedef struct mlp__watch { double running; int started; } mlp__watch;

static double mlp__loss_of_guessing(const mlp_net *net)
{
    return net->loss == MLP_LOSS_CE ? log((double)mlp_output_width(net)) : 1.0;
}

/* the first ReLU layer whose every output is 0 for the whole batch (its
   index, from 0, in net->layers), or -1; layers and batches under 8 are
   left alone (two units can both be off for one sample by chance, not 8
   for 8) */
#define MLP__DEAD_MIN 8

static int mlp__watched_relu(const mlp_net *net, int l)
{
    const mlp_layer *L = &net->layers[l];
    return l + 1 < net->n_layers && L->kind == MLP_LAYER_ACT && L->act == MLP_ACT_RELU && L->n_out >= MLP__DEAD_MIN;
}

/* whether any unit of layer l had a nonzero output for one of the B rows */
static int mlp__layer_active(const mlp_net *net, int l, int B)
{
    size_t i, n = (size_t)B * (size_t)net->layers[l].n_out;
    const float *y = net->out[l];
    for (i = 0; i < n && y[i] == 0.0f; i++) {}
    return i < n;
}

static int mlp__dead_relu_layer(const mlp_net *net, int B)
{
    int l;
    for (l = 0; l + 1 < net->n_layers && B >= MLP__DEAD_MIN; l++)
        if (mlp__watched_relu(net, l) && !mlp__layer_active(net, l, B)) return l;
    return -1;
}

/* how many of layers 0..l are of this kind: hidden layer k (from 1) is the
   k-th product's output, NAME_wk of an export the k-th product's weights */
static int mlp__count_kind(const mlp_net *net, mlp_layer_kind kind, int l)
{
    int i, k = 0;
    for (i = 0; i <= l; i++) k += net->layers[i].kind == kind;
    return k;
}

/* dead: the layer mlp__dead_relu_layer found, or -1 */
static int mlp__diverged(const mlp_net *net, const mlp_train_config *cfg, mlp__watch *w, float loss, int dead,
                         int epoch, int batch_no)
{
    double limit = cfg->diverge_factor * mlp__loss_of_guessing(net);
    if (cfg->diverge_factor < 0.0f) return MLP_OK;
    w->running = w->started ? w->running + (loss - w->running) / 16.0 : loss;
    w->started = 1;
    if (w->running > limit)
        return mlp__fail(MLP_ENUMERIC, "training diverged in epoch %d, batch %d: the running loss %.3g is over %g times "
                         "what guessing costs (%.3g) (learning rate too high?)", epoch + 1, batch_no + 1, w->running,
                         (double)cfg->diverge_factor, mlp__loss_of_guessing(net));
    if (dead >= 0)
        return mlp__fail(MLP_ENUMERIC, "training diverged in epoch %d, batch %d: all %d units of hidden layer %d (ReLU) are "
                         "inactive for the whole batch, so no gradient reaches the layers below (learning rate too high?)",
                         epoch + 1, batch_no + 1, net->layers[dead].n_out, mlp__count_kind(net, MLP_LAYER_DENSE, dead));
    return MLP_OK;
}

/* rescales all gradients so their global L2 norm is at most max */
static void mlp__clip_gradients(mlp_net *net, float max)
{
    size_t i;
    double ss = 0.0;
    for (i = 0; i < net->n_params; i++) ss += (double)net->grads[i] * net->grads[i];
    if (ss > (double)max * max) {
        float k = (float)(max / sqrt(ss));
        for (i = 0; i < net->n_params; i++) net->grads[i] *= k;
    }
}

/* caps the L2 norm of every unit's incoming weights (column j of W). The
   columns are strided, so their squares are summed row by row, 256 columns
   at a time: contiguous loads instead of one cache line per weight. */
static void mlp__max_norm(mlp_net *net, float max)
{
    int l, i, j, j0;
    for (l = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        if (L->kind != MLP_LAYER_DENSE) continue;
        for (j0 = 0; j0 < L->n_out; j0 += 256) {
            float ss[256];
            int w = L->n_out - j0 < 256 ? L->n_out - j0 : 256, over = 0;
            for (j = 0; j < w; j++) ss[j] = 0.0f;
            for (i = 0; i < L->n_in; i++) {
                const float *row = L->W + (size_t)i * L->n_out + j0;
                for (j = 0; j < w; j++) ss[j] += row[j] * row[j];
            }
            for (j = 0; j < w; j++) {
                ss[j] = ss[j] > max * max ? max / sqrtf(ss[j]) : 1.0f;
                over |= ss[j] != 1.0f;
            }
            if (!over) continue;
            for (i = 0; i < L->n_in; i++) {
                float *row = L->W + (size_t)i * L->n_out + j0;
                for (j = 0; j < w; j++) row[j] *= ss[j];
            }
        }
    }
}

/* The update of the optimizer's next step (Adam's bias correction for
   step net->step + 1, which the step then counts). */
static void mlp__plan_update(mlp__update_job *j, mlp_net *net, const mlp_train_config *cfg, float lr)
{
    memset(j, 0, sizeof *j);
    j->net = net;
    j->optimizer = cfg->optimizer; j->lr = lr; j->momentum = cfg->momentum; j->weight_decay = cfg->weight_decay;
    if (cfg->optimizer >= MLP_OPT_ADAM) {
        float step = (float)(net->step + 1);
        j->adam.lr = lr; j->adam.b1 = cfg->beta1; j->adam.b2 = cfg->beta2; j->adam.eps = cfg->eps;
        j->adam.c1 = 1.0f - powf(cfg->beta1, step);
        j->adam.c2 = 1.0f - powf(cfg->beta2, step);
        j->adam.decoupled = cfg->optimizer == MLP_OPT_ADAMW;
    }
}

/* One step with a config already completed and checked (mlp_train_epoch
   does that once per epoch, not once per batch). */
static int mlp__optimizer_step(mlp_net *net, const mlp_train_config *cfg, float lr)
{
    mlp__update_job j;
    int rc;
    if ((rc = mlp__ensure_state(net, cfg->optimizer >= MLP_OPT_ADAM)) != MLP_OK) return rc;
    if (cfg->clip_norm > 0.0f) mlp__clip_gradients(net, cfg->clip_norm);
    mlp__plan_update(&j, net, cfg, lr);
    net->step += cfg->optimizer >= MLP_OPT_ADAM;
    rc = mlp__update(net, &j);
    if (rc == MLP_OK && cfg->max_norm > 0.0f) mlp__max_norm(net, cfg->max_norm);
    return rc;
}

MLPDEF int mlp_optimizer_step(mlp_net *net, const mlp_train_config *config, float lr)
{
    mlp_train_config cfg;
    int rc;
    if (!net || !config) return mlp__fail(MLP_EARG, "mlp_optimizer_step: NULL argument");
    cfg = mlp__with_defaults(config);
    if ((rc = mlp__check_config(&cfg)) != MLP_OK) return rc;
    return mlp__optimizer_step(net, &cfg, lr);
}

/* ---- training loop and metrics ------------------------------------------- */


MLPDEF float mlp_lr_at(const mlp_train_config *config, int epoch)
{
    float base, factor;
    mlp_train_config c;
    const mlp_train_config *cfg = &c;
    if (!config || epoch < 0) return 0.0f;
    c = mlp__with_defaults(config);
    base = cfg->lr * (cfg->lr_scale > 0.0f ? cfg->lr_scale : 1.0f);
    switch (cfg->schedule) {
    case MLP_SCHEDULE_EXP: factor = powf(cfg->lr_decay, (float)epoch); break;
    case MLP_SCHEDULE_COSINE: {
        int warm = cfg->warmup_epochs > 0 ? cfg->warmup_epochs : 0, span = cfg->total_epochs - warm;
        if (epoch < warm) factor = (float)(epoch + 1) / (float)(warm + 1);
        else if (span <= 0 || epoch >= cfg->total_epochs) factor = 0.0f;
        else factor = 0.5f * (1.0f + cosf(3.14159265f * (float)(epoch - warm) / (float)span));
        break;
    }
    default: factor = powf(cfg->lr_decay, (float)(cfg->lr_step > 0 ? epoch / cfg->lr_step : 0));
    }
    return base * factor;
}

static int mlp__argmax(const float *v, int n)
{
    int j, best = 0;
    for (j = 1; j < n; j++) if (v[j] > v[best]) best = j;
    return best;
}

/* Fisher-Yates shuffle of 0..n-1 */
static void mlp__permutation(int *perm, int n, mlp_rng *rng)
{
    int i;
    for (i = 0; i < n; i++) perm[i] = i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)mlp_rng_below(rng, (uint32_t)i + 1), t = perm[i];
        perm[i] = perm[j]; perm[j] = t;
    }
}


/* The caller's callback runs in the caller's floating-point mode, not in
   the flush-to-zero mode training uses. */
static int mlp__call_on_batch(const mlp_train_config *cfg, const mlp_batch_info *info, unsigned caller_fp_mode)
{
    int stop;
    mlp__restore_fp_mode(caller_fp_mode);
    stop = cfg->on_batch(cfg->user, info);
    (void)mlp__flush_denormals();
    return stop;
}

/* The batch's rows, copied from random places in the training set. A row
   starts cache and TLB misses the hardware cannot predict, so the rows 8
   places ahead are asked for while this one is copied: their misses
   overlap instead of queueing. B1 on one thread (bench --peers b1 1,
   medians of 7 alternating runs): 0.462 -> 0.402 s/epoch. */
#define MLP__GATHER_AHEAD 8

static void mlp__gather_rows(float *dst, const float *src, int dim, const int *rows, int n)
{
    int i, k, lines = (int)(((size_t)dim * sizeof(float) + 63) / 64);
    for (i = 0; i < n; i++) {
        if (i + MLP__GATHER_AHEAD < n) {
            const char *ahead = (const char *)(src + (size_t)rows[i + MLP__GATHER_AHEAD] * dim);
            for (k = 0; k < lines; k++) MLP__PREFETCH(ahead + (size_t)k * 64);
        }
        memcpy(dst + (size_t)i * dim, src + (size_t)rows[i] * dim, (size_t)dim * sizeof(float));
    }
}

/* ---- data-parallel steps (mlp_train_config.reduce) ---- */
/* What one step sums over the processes, in one block of floats: the
   gradient; batchnorm's running statistics as each process with rows of
   the batch updated them (zeros from the others); the batch's summed loss,
   its correct predictions, how many processes had rows and how many
   failed; then per layer whether any of its units was active. */
enum { MLP__SUM_LOSS, MLP__SUM_CORRECT, MLP__SUM_WITH_ROWS, MLP__SUM_FAILED, MLP__SUM_LAYERS };

typedef struct mlp__sums { float *v; size_t n, n_stats; } mlp__sums;

static int mlp__sums_alloc(mlp__sums *s, const mlp_net *net)
{
    s->n_stats = mlp_get_running_stats(net, NULL);
    s->n = net->n_params + s->n_stats + MLP__SUM_LAYERS + (size_t)net->n_layers;
    s->v = (float *)mlp__alloc(s->n, sizeof(float), 1);
    return s->v ? MLP_OK : MLP_ENOMEM;
}

/* The rows of the global batch (sample numbers of the whole set) that this
   shard holds, as its own row numbers into mine; returns how many. */
static int mlp__my_rows(const int *batch, int B, int first, int n, int *mine)
{
    int i, k = 0;
    for (i = 0; i < B; i++)
        if (batch[i] >= first && batch[i] - first < n) mine[k++] = batch[i] - first;
    return k;
}

/* This process's part of a global batch of B rows (its `rows` of them in
   xb, yb), then the reduce: afterwards every process holds the whole
   batch's gradient, running statistics, mean loss, correct count and
   dead ReLU layer (or -1), the same numbers everywhere. */
/* The forward and backward pass over this process's `rows` rows of a batch
   of B (all of them with one process): their correct predictions added to
   *correct, their mean loss in *loss. */
static int mlp__pass(mlp_net *net, const float *xb, const int *yb, int rows, int B, float *loss, int *correct)
{
    int i, rc, n_out = mlp_output_width(net);
    const float *y;
    net->training = 1;
    y = mlp_forward(net, xb, rows);
    if (!y) { net->training = 0; return MLP_ENOMEM; }
    for (i = 0; i < rows; i++) *correct += mlp__argmax(y + (size_t)i * n_out, n_out) == yb[i];
    rc = mlp__backward(net, yb, B, loss);
    net->training = 0;
    return rc;
}

static int mlp__shared_pass(mlp_net *net, const mlp_train_config *cfg, mlp__sums *s, const float *xb, const int *yb,
                            int rows, int B, float *loss, int *correct, int *dead)
{
    float *tail = s->v + net->n_params + s->n_stats, *active = tail + MLP__SUM_LAYERS;
    float slice_mean = 0.0f;
    int l, mine = 0, rc = MLP_OK;
    memset(s->v, 0, s->n * sizeof(float));
    if (rows > 0) {
        rc = mlp__pass(net, xb, yb, rows, B, &slice_mean, &mine);
        tail[MLP__SUM_CORRECT] = (float)mine;
        tail[MLP__SUM_LOSS] = slice_mean * (float)rows; /* not finite: every process stops on it */
        if (rc == MLP_OK) {
            memcpy(s->v, net->grads, net->n_params * sizeof(float));
            (void)mlp_get_running_stats(net, s->v + net->n_params);
            tail[MLP__SUM_WITH_ROWS] = 1.0f;
            for (l = 0; l < net->n_layers; l++) active[l] = (float)(mlp__watched_relu(net, l) && mlp__layer_active(net, l, rows));
        } else if (rc != MLP_ENUMERIC) tail[MLP__SUM_FAILED] = 1.0f;
    }
    if (cfg->reduce(cfg->reduce_user, s->v, s->n) != 0) return mlp__fail(MLP_EIO, "the reduce call (summing over the processes) failed");
    if (tail[MLP__SUM_FAILED] > 0.0f)
        return rc != MLP_OK && rc != MLP_ENUMERIC ? rc : mlp__fail(MLP_EIO, "another process failed in this batch");
    *loss = tail[MLP__SUM_LOSS] / (float)B;
    *correct = (int)tail[MLP__SUM_CORRECT];
    if (!isfinite(*loss)) return MLP_ENUMERIC;
    memcpy(net->grads, s->v, net->n_params * sizeof(float));
    if (s->n_stats && tail[MLP__SUM_WITH_ROWS] > 0.0f) {
        size_t k;
        float *st = s->v + net->n_params;
        for (k = 0; k < s->n_stats; k++) st[k] /= tail[MLP__SUM_WITH_ROWS];
        if ((rc = mlp_set_running_stats(net, st)) != MLP_OK) return rc;
    }
    *dead = -1;
    for (l = 0; l < net->n_layers && B >= MLP__DEAD_MIN && *dead < 0; l++)
        if (mlp__watched_relu(net, l) && active[l] == 0.0f) *dead = l;
    return MLP_OK;
}

/* Before the first batch, a reduce of one float: whether any process
   failed to start the epoch (bad data, no memory). Otherwise the others
   would wait for it in the first batch's reduce. */
static int mlp__all_ready(const mlp_train_config *cfg, int rc)
{
    float failed = rc != MLP_OK ? 1.0f : 0.0f;
    if (cfg->reduce(cfg->reduce_user, &failed, 1) != 0) return mlp__fail(MLP_EIO, "the reduce call (summing over the processes) failed");
    if (rc == MLP_OK && failed > 0.0f) return mlp__fail(MLP_EIO, "another process could not start the epoch");
    return rc;
}

/* ---- a training step as one parallel region ---- */
/* On a network of dense layers with batchnorm and activation layers
   between them (no dropout), without gradient clipping or a reduce,
   mlp_train_epoch runs a batch's gather, forward pass, backward pass and
   update as one job of the engine's threads, with a barrier after each
   layer, instead of one job per product with the rest on one thread.
   Thread t computes its part of each hidden layer's forward product (its
   bias, batchnorm and activation included) and goes on with that part:
   its rows of the batch when only activations follow the layer, its
   columns when batchnorm does; its columns of each input gradient
   (mlp__own_part); the head's rows; and rows of each weight gradient,
   which it updates as soon as they are computed (mlp__step_weights).
   Every element takes the arithmetic
   of the layer-by-layer path (mlp_forward, mlp_backward,
   mlp_optimizer_step), so the results are the same bits on any number of
   threads and on either path. B1 (bench --peers b1 2, 3 alternating runs
   each, this machine): two threads 0.55 -> 0.36 s/epoch, one 0.40 -> 0.38.
   The update stays in contiguous slices: updating each thread's own
   columns of every row was slower (0.45 s), as the hardware prefetchers
   pull the neighbouring columns' lines across (bench --sharing), and for
   the same reason rows of the batch beat columns in the forward pass (B1
   on two threads, 3 alternating runs: 0.304 -> 0.290 s/epoch). */
enum { MLP__AT_PASS, MLP__AT_WATCH, MLP__AT_UPDATE }; /* where a step stopped */

typedef struct mlp__step_job {
    mlp_net *net;
    const mlp_train_config *cfg;
    mlp__update_job update;
    mlp__watch *watch;
    const int *labels;
    float *xb;                /* the batch, gathered by the threads from ds */
    const mlp_dataset *ds;
    const int *rows;
    int B, epoch, batch_no;
    float loss;
    int correct[MLP_MAX_THREADS], rc, at;
} mlp__step_job;

/* whether dense layer l's products are shared by columns (the blocked
   kernel's path: not the batch-1 or narrow-output kernels) */
static int mlp__owns_columns(const mlp_net *net, int l, int B)
{
    return mlp__gemm_path(net->engine, 0, 0, B, net->layers[l].n_out) == MLP__PATH_BLOCKED;
}

static int mlp__step_fits(const mlp_net *net, const mlp_train_config *cfg, int B)
{
    int l, last = net->n_layers - 1;
    if (cfg->reduce || cfg->clip_norm > 0.0f || net->layers[0].kind != MLP_LAYER_DENSE || net->layers[last].kind != MLP_LAYER_DENSE)
        return 0;
    for (l = 0; l <= last; l++) {
        if (net->layers[l].kind == MLP_LAYER_DROPOUT) return 0; /* its masks are drawn in row order */
        if (net->layers[l].kind == MLP_LAYER_DENSE && l < last && !mlp__owns_columns(net, l, B)) return 0;
    }
    return 1;
}

/* the dense layer after l, or before l (-1 for none); between two dense
   layers only batchnorm and activations, which work unit by unit */
static int mlp__next_dense(const mlp_net *net, int l)
{
    for (l++; l < net->n_layers && net->layers[l].kind != MLP_LAYER_DENSE; l++) {}
    return l;
}

static int mlp__prev_dense(const mlp_net *net, int l)
{
    for (l--; l >= 0 && net->layers[l].kind != MLP_LAYER_DENSE; l--) {}
    return l;
}

/* The part of dense layer l's output, and of the layers up to the next
   dense one, that thread t computes: rows [r0, r1) x columns [c0, c1).
   In the forward pass its rows when those layers are all activations:
   each thread then writes whole rows, where two threads writing halves of
   every row pull each other's lines across (bench --sharing). Otherwise
   its columns: batchnorm's statistics need every row of a column, and in
   the backward pass a thread's columns of the input gradient are the rows
   of the weights it updates, which then never cross between the cores
   (B1 on two threads, the second layer's weight gradient and update:
   23.5 us per step with rows, 20 with columns). Rows as mlp__gemm_share
   splits them by_rows, columns as it splits them by columns. */
typedef struct mlp__part { int by_rows, r0, r1, c0, c1; } mlp__part;

static mlp__part mlp__own_part(const mlp_net *net, int l, int B, int t, int n, int forward)
{
    mlp__part p;
    int f, w = net->layers[l].n_out;
    p.by_rows = forward;
    for (f = l + 1; f < mlp__next_dense(net, l); f++) p.by_rows &= net->layers[f].kind != MLP_LAYER_BATCHNORM;
    p.r0 = 0; p.r1 = B; p.c0 = 0; p.c1 = w;
    if (p.by_rows) {
        const mlp__kernel *kern = mlp__micro_for(net->engine->k, w); /* NULL: the scalar GEMM, no panels */
        mlp__share(B, kern ? kern->mr : 8, t, n, &p.r0, &p.r1);
    }
    else mlp__own_columns(net->engine, w, t, n, &p.c0, &p.c1);
    return p;
}

/* the batchnorm and activation layers after dense layer l, in part p of
   their outputs */
static void mlp__step_followers(mlp_net *net, int l, int B, mlp__part p)
{
    int i, f, w = net->layers[l].n_out;
    for (f = l + 1; f < mlp__next_dense(net, l) && p.c0 < p.c1; f++) {
        const mlp_layer *F = &net->layers[f];
        if (F->kind == MLP_LAYER_BATCHNORM) mlp__batchnorm_forward(net->engine->k, F, net->out[f], net->aux[f], net->out[f - 1], B, 1, p.c0, p.c1);
        else
            for (i = p.r0; i < p.r1; i++)
                mlp__act_forward(net->engine->k, F->act, net->out[f] + (size_t)i * w + p.c0,
                                 net->out[f - 1] + (size_t)i * w + p.c0, (size_t)(p.c1 - p.c0));
    }
}

/* z = x W + b in thread t's part of dense layer l, then the batchnorm
   and activation layers after it in that part */
static void mlp__step_forward(mlp_net *net, int l, int B, int t, int n)
{
    const mlp_layer *L = &net->layers[l];
    const float *x = l > 0 ? net->out[l - 1] : net->x;
    int i, w = L->n_out;
    float *z = net->out[l];
    mlp__part p = mlp__own_part(net, l, B, t, n, 1);
    if (p.c0 >= p.c1 || p.r0 >= p.r1) return;
    for (i = p.r0; i < p.r1; i++) memcpy(z + (size_t)i * w + p.c0, L->b + p.c0, (size_t)(p.c1 - p.c0) * sizeof(float));
    mlp__gemm_share(net->engine, t, n, p.by_rows, 0, 0, B, w, L->n_in, 1.0f, x, L->n_in, L->W, w, 1.0f, z, w);
    mlp__step_followers(net, l, B, p);
}

/* A hidden layer with at least one K block (mlp__k_block) per thread is
   split by its inputs instead: thread t multiplies its blocks of x's
   columns by the same rows of W, the rows its slice of the update writes,
   so the weights stay in its cache from one step to the next. Split by
   output columns, every thread read every row of W, and half of W crossed
   between the cores twice a step (once read, once invalidated by the
   update), which on a two-core VM cost more than the product. Thread 0's
   blocks go into z after the bias, the others' into one buffer per block;
   after a barrier each thread adds them to its columns of z in block
   order, the order in which the whole product adds its blocks: the same
   bits. */
static int mlp__splits_inputs(const mlp_net *net, int l, int n)
{
    int K = net->layers[l].n_in, kb = mlp__k_block(K);
    return n > 1 && l < net->n_layers - 1 && (K + kb - 1) / kb >= n;
}

/* thread 0's K blocks end at *first_other; *floats: the buffers the
   others' blocks need (B rows) */
static void mlp__input_blocks(const mlp_net *net, int l, int B, int n, int *first_other, size_t *floats)
{
    int K = net->layers[l].n_in, kb = mlp__k_block(K), blocks = (K + kb - 1) / kb, b0;
    mlp__share(blocks, 1, 0, n, &b0, first_other);
    *floats = (size_t)(blocks - *first_other) * (size_t)B * (size_t)net->layers[l].n_out;
}

static void mlp__step_forward_by_inputs(mlp_net *net, int l, int B, int t, int n)
{
    const mlp_layer *L = &net->layers[l];
    const mlp__engine *g = net->engine;
    const float *x = l > 0 ? net->out[l - 1] : net->x;
    int K = L->n_in, w = L->n_out, kb = mlp__k_block(K), blocks = (K + kb - 1) / kb;
    int first_other, b0, b1, k, i;
    mlp__part p;
    const mlp__kernel *kern = mlp__micro_for(g->k, w);
    float *z = net->out[l];
    size_t floats, block = (size_t)B * (size_t)w;
    mlp__input_blocks(net, l, B, n, &first_other, &floats);
    mlp__share(blocks, 1, t, n, &b0, &b1);
    if (t == 0) {
        for (i = 0; i < B; i++) memcpy(z + (size_t)i * w, L->b, (size_t)w * sizeof(float));
        mlp__gemm_blocks(kern, g->pack_a[t], g->pack_b[t], kb, 0, 0, B, w, b1 * kb < K ? b1 * kb : K, 1.0f, x, K,
                         L->W, w, 1.0f, z, w);
    } else
        for (k = b0; k < b1; k++) {
            int k0 = k * kb, kc = K - k0 < kb ? K - k0 : kb;
            mlp__gemm_blocks(kern, g->pack_a[t], g->pack_b[t], kb, 0, 0, B, w, kc, 1.0f, x + k0, K,
                             L->W + (size_t)k0 * w, w, 0.0f, net->partials + (size_t)(k - first_other) * block, w);
        }
    mlp__barrier(net->engine, n);
    p = mlp__own_part(net, l, B, t, n, 1);
    for (i = p.r0; i < p.r1 && p.c0 < p.c1; i += 8) /* 8 rows of z stay in L1 while every block adds to them */
        for (k = first_other; k < blocks; k++)
            g->k->add_rows(z + (size_t)i * w + p.c0, (size_t)w, net->partials + (size_t)(k - first_other) * block + (size_t)i * w + p.c0,
                           (size_t)w, p.r1 - i < 8 ? p.r1 - i : 8, (size_t)(p.c1 - p.c0));
    mlp__step_followers(net, l, B, p);
}

/* dW in thread t's rows (unless the update computes it: weights_too = 0)
   and db in its columns of dense layer l; below the first, the gradient
   of its input (dout[l - 1]) in t's columns */
static void mlp__step_backward(mlp_net *net, int l, int B, int t, int n, int weights_too)
{
    const mlp_layer *L = &net->layers[l];
    const float *dz = net->dout[l], *x = l > 0 ? net->out[l - 1] : net->x;
    int c0, c1, w = L->n_out, w_in = L->n_in;
    if (weights_too) mlp__gemm_share(net->engine, t, n, 1, 1, 0, w_in, w, B, 1.0f, x, w_in, dz, w, 0.0f, L->dW, w);
    mlp__own_columns(net->engine, w, t, n, &c0, &c1);
    if (c0 < c1) mlp__column_sums(net->engine->k, L->db + c0, dz + c0, (size_t)w, B, (size_t)(c1 - c0));
    if (l > 0) mlp__gemm_share(net->engine, t, n, mlp__own_part(net, mlp__prev_dense(net, l), B, t, n, 0).by_rows, 0, 1, B, w_in, w,
                               1.0f, dz, w, L->W, w, 0.0f, net->dout[l - 1], w_in);
}

/* The weight gradient of a dense layer in thread t's rows, each block of
   rows (MLP__MC) updated as soon as the driver has it, while it is in the
   cache, rather than the whole gradient written out and read back by a
   separate update pass. Each element is the product's and the update's arithmetic
   (update slices start at multiples of 16 floats: rows of a width that is
   one), so the bits are the layer-by-layer path's. The update must wait
   for every thread's input gradient, which reads all of W. */
typedef struct mlp__rows_update {
    mlp__update_job *job;
    size_t first;   /* W's first element of the first row, in params */
    int width, t;
} mlp__rows_update;

static void mlp__update_rows(void *ctx, int i0, int rows)
{
    mlp__rows_update *u = (mlp__rows_update *)ctx;
    size_t w = (size_t)u->width;
    float sum = mlp__update_block(u->job, u->first + (size_t)i0 * w, (size_t)rows * w, u->job->weight_decay);
    if (!isfinite(sum)) u->job->bad[u->t] = 1;
}

/* Rows are final only in the driver's last column block: the first
   columns of a layer wider than MLP__NC would have left the cache again
   (the recipe network's 800-wide layers were no faster fused). */
static int mlp__fuses_update(const mlp_net *net, int l, int B)
{
    int w = net->layers[l].n_out;
    return w % 16 == 0 && w <= MLP__NC && mlp__owns_columns(net, l, B);
}

static void mlp__step_weights(mlp_net *net, mlp__update_job *job, int l, int B, int t, int n)
{
    const mlp_layer *L = &net->layers[l];
    const mlp__engine *g = net->engine;
    const float *dz = net->dout[l], *x = l > 0 ? net->out[l - 1] : net->x;
    const mlp__kernel *kern = mlp__micro_for(g->k, L->n_out);
    int r0, r1, w = L->n_out;
    mlp__rows_update u;
    mlp__rows_hook done;
    mlp__share(L->n_in, kern->mr, t, n, &r0, &r1); /* mlp__gemm_share's rows */
    if (r0 >= r1) return;
    u.job = job; u.first = (size_t)(L->W - net->params) + (size_t)r0 * (size_t)w; u.width = w; u.t = t;
    done.fn = mlp__update_rows; done.ctx = &u;
    mlp__gemm_blocks_then(kern, g->pack_a[t], g->pack_b[t], mlp__k_block(B), 1, 0, r1 - r0, w, B, 1.0f, x + r0, L->n_in,
                          dz, w, 0.0f, L->dW + (size_t)r0 * (size_t)w, w, &done);
}

/* back through the activation and batchnorm layers before dense layer l,
   in thread t's part of them (mlp__own_part of the dense layer before) */
static void mlp__step_backward_between(mlp_net *net, int l, int B, int t, int n)
{
    int i, f, w_in = net->layers[l].n_in;
    mlp__part p;
    if (l == 0) return;
    p = mlp__own_part(net, mlp__prev_dense(net, l), B, t, n, 0);
    for (f = l - 1; f > mlp__prev_dense(net, l) && p.c0 < p.c1; f--) {
        const mlp_layer *F = &net->layers[f];
        if (F->kind == MLP_LAYER_BATCHNORM) mlp__batchnorm_backward(net->engine->k, F, net->dout[f - 1], net->dout[f], net->aux[f], B, 1, p.c0, p.c1);
        else
            for (i = p.r0; i < p.r1; i++) {
                size_t at = (size_t)i * w_in + (size_t)p.c0;
                mlp__act_backward(net->engine->k, F->act, net->dout[f - 1] + at, net->dout[f] + at, net->out[f] + at,
                                  (size_t)(p.c1 - p.c0));
            }
    }
}

/* Between the forward and the backward pass, the head: the output layer's
   forward product unless the threads shared it by columns, then each row's
   prediction, loss and loss gradient. Shared by rows of the batch
   (mlp__own_part) where every thread's rows take the product's arithmetic
   of the whole batch (mlp__gemm_serial: none or more than 2), otherwise
   thread 0's alone, with the output layer's backward pass. Each row's loss
   goes to net->row_loss, and thread 0 adds them in row order
   (mlp__step_head_total), as mlp_loss_eval does: the same bits. */
static int mlp__head_in_rows(const mlp_net *net, int B, int n, int shared_last)
{
    int t;
    if (n < 2) return 0;
    for (t = 0; t < n && !shared_last; t++) {
        mlp__part p = mlp__own_part(net, net->n_layers - 1, B, t, n, 1);
        if (p.r1 - p.r0 > 0 && p.r1 - p.r0 < 3) return 0;
    }
    return 1;
}

static void mlp__step_head_rows(mlp__step_job *j, int product_done, int t, int n)
{
    mlp_net *net = j->net;
    const mlp_layer *L = &net->layers[net->n_layers - 1];
    int i, w = L->n_out;
    float *y = net->out[net->n_layers - 1];
    mlp__part p = mlp__own_part(net, net->n_layers - 1, j->B, t, n, 1);
    if (!product_done && p.r0 < p.r1) {
        for (i = p.r0; i < p.r1; i++) memcpy(y + (size_t)i * w, L->b, (size_t)w * sizeof(float));
        mlp__gemm_serial(net->engine, t, p.r1 - p.r0, w, L->n_in, 1.0f, net->out[net->n_layers - 2] + (size_t)p.r0 * L->n_in,
                         L->n_in, L->W, w, 1.0f, y + (size_t)p.r0 * w, w);
    }
    for (i = p.r0; i < p.r1; i++) {
        j->correct[t] += mlp__argmax(y + (size_t)i * w, w) == j->labels[i];
        net->row_loss[i] = mlp__loss_row(net->loss, y, j->labels, i, j->B, w, net->dout[net->n_layers - 1]);
    }
}

/* thread 0, every row's loss in: the batch's loss, the divergence watch */
static void mlp__step_head_total(mlp__step_job *j)
{
    mlp_net *net = j->net;
    double total = 0.0;
    int i;
    for (i = 0; i < j->B; i++) total += net->row_loss[i];
    j->loss = (float)(total / j->B);
    j->at = MLP__AT_PASS;
    if (!isfinite(j->loss)) { j->rc = mlp__fail(MLP_ENUMERIC, "the loss is %g", j->loss); return; }
    j->at = MLP__AT_WATCH;
    j->rc = mlp__diverged(net, j->cfg, j->watch, j->loss, mlp__dead_relu_layer(net, j->B), j->epoch, j->batch_no);
    if (j->rc != MLP_OK) return;
    j->at = MLP__AT_UPDATE;
}

static void mlp__step_task(void *arg, int t, int n)
{
    mlp__step_job *j = (mlp__step_job *)arg;
    mlp_net *net = j->net;
    int l, last = net->n_layers - 1, shared_last = mlp__owns_columns(net, last, j->B);
    int head_in_rows = mlp__head_in_rows(net, j->B, n, shared_last);
    int r0 = (int)((long)j->B * t / n), r1 = (int)((long)j->B * (t + 1) / n);
    mlp__gather_rows(j->xb + (size_t)r0 * j->ds->dim, j->ds->x, j->ds->dim, j->rows + r0, r1 - r0);
    mlp__barrier(net->engine, n);
    for (l = 0; l < last || (l == last && shared_last); l = mlp__next_dense(net, l)) {
        if (mlp__splits_inputs(net, l, n)) mlp__step_forward_by_inputs(net, l, j->B, t, n);
        else mlp__step_forward(net, l, j->B, t, n);
        mlp__barrier(net->engine, n);
    }
    if (head_in_rows) {
        mlp__step_head_rows(j, shared_last, t, n);
        mlp__barrier(net->engine, n);
    } else if (t == 0) {
        if (!shared_last) mlp__step_forward(net, last, j->B, 0, 1);
        mlp__step_head_rows(j, 1, 0, 1);
    }
    if (t == 0) {
        mlp__step_head_total(j);
        if (j->rc == MLP_OK && !shared_last && !head_in_rows) mlp__step_backward(net, last, j->B, 0, 1, 1);
    }
    mlp__barrier(net->engine, n);
    if (j->rc != MLP_OK) return;
    for (l = last; l >= 0; l = mlp__prev_dense(net, l)) {
        int f, in_head = l == last && !shared_last && !head_in_rows, fused = !in_head && mlp__fuses_update(net, l, j->B);
        if (!in_head) mlp__step_backward(net, l, j->B, t, n, !fused);
        mlp__step_backward_between(net, l, j->B, t, n);
        /* the input gradient read all of W, others wrote parts of dW and db;
           the layer below needs every column of its output's gradient */
        if (l > 0 || !in_head) mlp__barrier(net->engine, n);
        if (fused) mlp__step_weights(net, &j->update, l, j->B, t, n);
        for (f = l; f > mlp__prev_dense(net, l); f--) mlp__update_layer_slice(&j->update, &net->layers[f], t, n, f == l && fused);
    }
}

/* the buffers of the products split by inputs on n threads */
static int mlp__reserve_partials(mlp_net *net, int B, int n)
{
    size_t most = 0, floats;
    int l, first_other;
    for (l = 0; l < net->n_layers; l = mlp__next_dense(net, l))
        if (mlp__splits_inputs(net, l, n)) {
            mlp__input_blocks(net, l, B, n, &first_other, &floats);
            if (floats > most) most = floats;
        }
    if (most <= net->partials_size) return MLP_OK;
    mlp__free64(net->partials);
    net->partials_size = 0;
    if (!(net->partials = (float *)mlp__calloc64(most, sizeof(float), 1))) return MLP_ENOMEM;
    net->partials_size = most;
    return MLP_OK;
}

/* One batch of mlp_train_epoch in one parallel region (mlp__step_fits):
   its correct predictions added to *correct, its mean loss in *loss, and
   in *at how far the step got (MLP__AT_UPDATE: the update ran). */
static int mlp__step_in_one_region(mlp_net *net, const mlp_train_config *cfg, mlp__watch *watch, float lr,
                                   const mlp_dataset *ds, const int *rows, float *xb, const int *yb, int B,
                                   int epoch, int batch_no, float *loss, int *correct, int *at)
{
    mlp__step_job j;
    size_t fma = 0;
    int l, t, rc;
    if ((rc = mlp__reserve(net, B)) != MLP_OK || (rc = mlp__ensure_state(net, cfg->optimizer >= MLP_OPT_ADAM)) != MLP_OK)
        return rc;
    net->x = xb;
    net->batch = B;
    net->batch_stats = 1;
    memset(&j, 0, sizeof j);
    j.net = net; j.cfg = cfg; j.watch = watch; j.labels = yb; j.xb = xb; j.ds = ds; j.rows = rows;
    j.B = B; j.epoch = epoch; j.batch_no = batch_no;
    mlp__plan_update(&j.update, net, cfg, lr);
    for (l = 0; l < net->n_layers; l = mlp__next_dense(net, l)) fma += (size_t)B * (size_t)net->layers[l].n_in * (size_t)net->layers[l].n_out;
    if ((rc = mlp__reserve_partials(net, B, fma >= MLP__PARALLEL_MIN_FMA ? net->engine->n_threads : 1)) != MLP_OK) return rc;
    if ((rc = mlp__check_labels(yb, B, mlp_output_width(net))) != MLP_OK) return rc;
    mlp__run(net->engine, fma >= MLP__PARALLEL_MIN_FMA, mlp__step_task, &j);
    *loss = j.loss;
    for (t = 0; t < MLP_MAX_THREADS; t++) *correct += j.correct[t];
    *at = j.at;
    if (j.rc != MLP_OK) return j.rc;
    net->step += cfg->optimizer >= MLP_OPT_ADAM;
    for (t = 0; t < MLP_MAX_THREADS; t++)
        if (j.update.bad[t]) return mlp__fail(MLP_ENUMERIC, "a gradient or weight became NaN or infinite");
    if (cfg->max_norm > 0.0f) mlp__max_norm(net, cfg->max_norm);
    return MLP_OK;
}

MLPDEF int mlp_train_epoch(mlp_net *net, const mlp_dataset *ds,
                           const mlp_train_config *config, int epoch, mlp_eval *stats)
{
    int *perm, *mine, start, rc, correct = 0, nb, batch_no, done = 0, total, first;
    mlp__watch watch = {0.0, 0};
    mlp__sums sums = {NULL, 0, 0};
    unsigned fp_mode;
    float *xb;
    int *yb;
    double loss_sum = 0.0;
    float lr;
    mlp_rng rng;
    mlp_train_config c;
    const mlp_train_config *cfg = &c;
    if (!net || !ds || !config) return mlp__fail(MLP_EARG, "mlp_train_epoch: NULL argument");
    c = mlp__with_defaults(config);
    /* with reduce, the batches are drawn from the whole set, of which ds is a part */
    first = cfg->reduce ? ds->shard_first : 0;
    total = cfg->reduce && ds->shard_total ? ds->shard_total : ds->n;
    nb = cfg->batch < total ? cfg->batch : total;
    perm = mine = yb = NULL;
    xb = NULL;
    if ((rc = mlp__check_config(cfg)) == MLP_OK && (rc = mlp_dataset_check(net, ds)) == MLP_OK) {
        if (cfg->start_batch < 0) rc = mlp__fail(MLP_EARG, "start_batch %d < 0", cfg->start_batch);
        else if (first < 0 || first > total - ds->n)
            rc = mlp__fail(MLP_EARG, "mlp_train_epoch: a shard of %d samples from %d in a set of %d", ds->n, first, total);
        else if (!(perm = (int *)mlp__alloc((size_t)total, sizeof(int), 1)) || !(mine = (int *)mlp__alloc((size_t)nb, sizeof(int), 1)) ||
                 !(xb = (float *)mlp__alloc((size_t)nb, (size_t)ds->dim, sizeof(float))) ||
                 !(yb = (int *)mlp__alloc((size_t)nb, sizeof(int), 1)) || (cfg->reduce && mlp__sums_alloc(&sums, net) != MLP_OK))
            rc = MLP_ENOMEM;
    }
    if (cfg->reduce) rc = mlp__all_ready(cfg, rc); /* a process that cannot start stops them all */
    if (rc != MLP_OK) {
        MLP_FREE(perm); MLP_FREE(mine); MLP_FREE(xb); MLP_FREE(yb); MLP_FREE(sums.v);
        return rc;
    }
    mlp_rng_seed(&rng, cfg->seed, (uint64_t)epoch + 1);
    mlp__permutation(perm, total, &rng);
    lr = mlp_lr_at(cfg, epoch);
    rc = MLP_OK;
    fp_mode = mlp__flush_denormals();
    batch_no = cfg->start_batch;
    for (start = (int)((long)batch_no * nb < total ? (long)batch_no * nb : total); start < total && rc == MLP_OK; start += nb) {
        int i, B = total - start < nb ? total - start : nb, rows = B, dead = -1, at = MLP__AT_PASS, in_one_region;
        const int *batch = perm + start;
        float loss = 0.0f;
        done += B;
        if (cfg->reduce) batch = mine, rows = mlp__my_rows(perm + start, B, first, ds->n, mine);
        in_one_region = !cfg->reduce && mlp__step_fits(net, cfg, B);
        if (!in_one_region) mlp__gather_rows(xb, ds->x, ds->dim, batch, rows);
        for (i = 0; i < rows; i++) yb[i] = ds->y[batch[i]];
        /* dropout masks from (seed, epoch, batch, shard): a resumed run draws the same */
        mlp_rng_seed(&net->dropout_rng, cfg->seed ^ 0x64726f706f7574ULL ^ ((uint64_t)first << 32),
                     ((uint64_t)epoch << 32) | (uint32_t)batch_no);
        if (cfg->reduce) {
            int batch_correct = 0;
            rc = mlp__shared_pass(net, cfg, &sums, xb, yb, rows, B, &loss, &batch_correct, &dead);
            correct += batch_correct;
        } else if (in_one_region)
            rc = mlp__step_in_one_region(net, cfg, &watch, lr, ds, batch, xb, yb, B, epoch, batch_no, &loss, &correct, &at);
        else if ((rc = mlp__pass(net, xb, yb, B, B, &loss, &correct)) == MLP_OK) dead = mlp__dead_relu_layer(net, B);
        if (rc != MLP_OK && at == MLP__AT_PASS) {
            if (rc == MLP_ENUMERIC)
                mlp__fail(rc, "the loss became %g in epoch %d, batch %d (learning rate too high?)", loss, epoch + 1, batch_no + 1);
            break;
        }
        if (rc != MLP_OK && at == MLP__AT_WATCH) break;
        if (at == MLP__AT_PASS) {
            if ((rc = mlp__diverged(net, cfg, &watch, loss, dead, epoch, batch_no)) != MLP_OK) break;
            rc = mlp__optimizer_step(net, cfg, lr);
        }
        if (rc == MLP_ENUMERIC)
            mlp__fail(rc, "a gradient or weight became NaN or infinite in epoch %d, batch %d (learning rate too high?)", epoch + 1, batch_no + 1);
        loss_sum += (double)loss * B;
        if (cfg->on_batch) {
            mlp_batch_info info;
            info.epoch = epoch; info.batch = batch_no; info.n_batches = (total + nb - 1) / nb;
            info.samples_done = start + B; info.loss = loss;
            if (rc == MLP_OK && mlp__call_on_batch(cfg, &info, fp_mode) && start + B < total)
                rc = mlp__fail(MLP_EINTR, "training stopped after epoch %d, batch %d", epoch + 1, batch_no + 1);
        }
        batch_no++;
    }
    MLP_FREE(perm); MLP_FREE(mine); MLP_FREE(xb); MLP_FREE(yb); MLP_FREE(sums.v);
    mlp__restore_fp_mode(fp_mode);
    if (stats) {
        stats->n = done; stats->correct = correct;
        stats->loss = done ? loss_sum / done : 0.0; stats->accuracy = done ? (double)correct / done : 0.0;
    }
    return rc;
}

MLPDEF int mlp_evaluate(mlp_net *net, const mlp_dataset *ds, int batch,
                        mlp_eval *out, int *confusion)
{
    int start, n_out, correct = 0, rc;
    double loss_sum = 0.0;
    if (!net || !ds || !out) return mlp__fail(MLP_EARG, "mlp_evaluate: NULL argument");
    if (batch < 1 || batch > MLP_MAX_BATCH) return mlp__fail(MLP_EARG, "mlp_evaluate: batch %d outside 1..%d", batch, MLP_MAX_BATCH);
    if ((rc = mlp_dataset_check(net, ds)) != MLP_OK) return rc;
    n_out = mlp_output_width(net);
    if (confusion) memset(confusion, 0, (size_t)n_out * n_out * sizeof(int));
    for (start = 0; start < ds->n; start += batch) {
        int i, B = ds->n - start < batch ? ds->n - start : batch;
        const int *labels = ds->y + start;
        const float *y = mlp_forward(net, ds->x + (size_t)start * ds->dim, B);
        float loss;
        if (!y) return MLP_ENOMEM;
        if ((rc = mlp_loss_eval(net->loss, y, labels, B, n_out, NULL, &loss)) != MLP_OK) return rc;
        loss_sum += (double)loss * B;
        for (i = 0; i < B; i++) {
            int p = mlp__argmax(y + (size_t)i * n_out, n_out);
            correct += p == labels[i];
            if (confusion) confusion[labels[i] * n_out + p]++;
        }
    }
    out->n = ds->n; out->correct = correct;
    out->loss = loss_sum / ds->n; out->accuracy = (double)correct / ds->n;
    return MLP_OK;
}

#ifndef MLP_NO_STDIO
#define MLP__MAX_FILE_BYTES 0x7FFFFFF0L

/* The whole file in one allocation (and a 0 byte after it), refusing files
   over 2 GiB: the size limit of model files and of CSV files. */
static int mlp__read_file(const char *path, unsigned char **out, size_t *size)
{
    FILE *f;
    long len;
    unsigned char *buf = NULL;
    int rc = MLP_OK;
    *out = NULL;
    *size = 0;
    if (!(f = fopen(path, "rb"))) return mlp__fail(MLP_EIO, "%s: cannot open", path);
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        rc = mlp__fail(MLP_EIO, "%s: cannot determine the file size", path);
    else if (len > MLP__MAX_FILE_BYTES) rc = mlp__fail(MLP_EFORMAT, "%s: %ld bytes is more than mlp.h reads (2 GiB)", path, len);
    else if (!(buf = (unsigned char *)mlp__alloc((size_t)len + 1, 1, 1))) rc = MLP_ENOMEM;
    else if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        rc = mlp__fail(MLP_EIO, "%s: read error", path);
        MLP_FREE(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[len] = 0;
    *out = buf;
    *size = buf ? (size_t)len : 0;
    return rc;
}
#endif

/* ---- command-line training ----------------------------------------------- */

MLPDEF mlp_cli mlp_cli_defaults(void)
{
    mlp_cli o;
    memset(&o, 0, sizeof o);
    o.layers = "784-256-128-10";
    o.act = MLP_ACT_RELU;
    o.loss = MLP_LOSS_CE;
    o.init = MLP_INIT_AUTO;
    o.epochs = 10;
    o.threads = 1;
    o.out = "model.mlp";
    o.train = mlp_train_defaults();
    return o;
}

static int mlp__cli_int(const char *flag, const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return mlp__fail(MLP_EARG, "%s %s: expected an integer in %ld..%ld", flag, s, lo, hi);
    *out = (int)v;
    return 1;
}

static int mlp__cli_float(const char *flag, const char *s, double lo, double hi, float *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return mlp__fail(MLP_EARG, "%s %s: expected a number in %g..%g", flag, s, lo, hi);
    *out = (float)v;
    return 1;
}

/* the index of s in the NULL-terminated names, as *out; a message listing them otherwise */
static int mlp__cli_choice(const char *flag, const char *s, const char *const *names, const char *listed, int *out)
{
    int k;
    for (k = 0; names[k]; k++)
        if (strcmp(s, names[k]) == 0) { *out = k; return 1; }
    return mlp__fail(MLP_EARG, "%s %s: expected %s", flag, s, listed);
}

/* names in C source: NAME_predict of mlp_export_c */
static int mlp__c_identifier(const char *s)
{
    size_t i, n = strlen(s);
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

MLPDEF int mlp_cli_flag(mlp_cli *o, int argc, char **argv, int *i)
{
    static const char *const acts[] = {"relu", "sigmoid", "tanh", NULL};
    static const char *const losses[] = {"ce", "mse", NULL};
    static const char *const inits[] = {"auto", "uniform", "glorot", "he", NULL};
    static const char *const optimizers[] = {"sgd", "nesterov", "adam", "adamw", NULL};
    static const char *const schedules[] = {"step", "exp", "cosine", NULL};
    static const char *const valued[] = {"--layers", "--act", "--loss", "--init", "--dropout", "--dropout-input",
        "--epochs", "--batch", "--lr", "--momentum", "--weight-decay", "--optimizer", "--beta1", "--beta2",
        "--clip-norm", "--max-norm", "--diverge-factor", "--schedule", "--lr-decay", "--lr-step", "--warmup",
        "--seed", "--threads", "--log", "--out", "--export-c", "--export-c-int8", "--export-name", NULL};
    const char *f, *v;
    int k, choice, rc = 1, seed;
    mlp_train_config *t;
    if (!o || !argv || !i || *i < 0 || *i >= argc) return mlp__fail(MLP_EARG, "mlp_cli_flag: bad arguments");
    f = argv[*i];
    t = &o->train;
    if (!strcmp(f, "--quiet")) { o->quiet = 1; return 1; }
    if (!strcmp(f, "--batchnorm")) { o->batchnorm = 1; return 1; }
    for (k = 0; valued[k] && strcmp(f, valued[k]); k++) {}
    if (!valued[k]) return 0;
    if (*i + 1 >= argc) return mlp__fail(MLP_EARG, "%s: missing value", f);
    v = argv[++*i];
    if (!strcmp(f, "--layers")) o->layers = v;
    else if (!strcmp(f, "--log")) o->log = v;
    else if (!strcmp(f, "--out")) o->out = v;
    else if (!strcmp(f, "--export-c")) o->export_c = v;
    else if (!strcmp(f, "--export-c-int8")) o->export_c_int8 = v;
    else if (!strcmp(f, "--export-name")) {
        o->export_name = v;
        if (!mlp__c_identifier(v)) rc = mlp__fail(MLP_EARG, "%s %s: expected a C identifier", f, v);
    }
    else if (!strcmp(f, "--act") && (rc = mlp__cli_choice(f, v, acts, "relu, sigmoid or tanh", &choice)) == 1)
        o->act = choice == 0 ? MLP_ACT_RELU : choice == 1 ? MLP_ACT_SIGMOID : MLP_ACT_TANH;
    else if (!strcmp(f, "--loss") && (rc = mlp__cli_choice(f, v, losses, "ce or mse", &choice)) == 1)
        o->loss = choice ? MLP_LOSS_MSE : MLP_LOSS_CE;
    else if (!strcmp(f, "--init") && (rc = mlp__cli_choice(f, v, inits, "auto, uniform, glorot or he", &choice)) == 1)
        o->init = choice == 0 ? MLP_INIT_AUTO : choice == 1 ? MLP_INIT_UNIFORM_FANIN : choice == 2 ? MLP_INIT_GLOROT : MLP_INIT_HE;
    else if (!strcmp(f, "--optimizer") && (rc = mlp__cli_choice(f, v, optimizers, "sgd, nesterov, adam or adamw", &choice)) == 1)
        t->optimizer = choice == 0 ? MLP_OPT_SGD : choice == 1 ? MLP_OPT_NESTEROV : choice == 2 ? MLP_OPT_ADAM : MLP_OPT_ADAMW;
    else if (!strcmp(f, "--schedule") && (rc = mlp__cli_choice(f, v, schedules, "step, exp or cosine", &choice)) == 1)
        t->schedule = choice == 0 ? MLP_SCHEDULE_STEP : choice == 1 ? MLP_SCHEDULE_EXP : MLP_SCHEDULE_COSINE;
    else if (!strcmp(f, "--dropout")) rc = mlp__cli_float(f, v, 0, 0.95, &o->dropout);
    else if (!strcmp(f, "--dropout-input")) rc = mlp__cli_float(f, v, 0, 0.95, &o->dropout_input);
    else if (!strcmp(f, "--epochs")) rc = mlp__cli_int(f, v, 0, 100000, &o->epochs);
    else if (!strcmp(f, "--batch")) rc = mlp__cli_int(f, v, 1, MLP_MAX_BATCH, &t->batch);
    else if (!strcmp(f, "--lr")) rc = mlp__cli_float(f, v, 1e-12, 1e6, &t->lr);
    else if (!strcmp(f, "--momentum")) rc = mlp__cli_float(f, v, 0, 1, &t->momentum);
    else if (!strcmp(f, "--weight-decay")) rc = mlp__cli_float(f, v, 0, 1e6, &t->weight_decay);
    else if (!strcmp(f, "--beta1")) rc = mlp__cli_float(f, v, 0, 0.999999, &t->beta1);
    else if (!strcmp(f, "--beta2")) rc = mlp__cli_float(f, v, 0, 0.999999, &t->beta2);
    else if (!strcmp(f, "--clip-norm")) rc = mlp__cli_float(f, v, 0, 1e9, &t->clip_norm);
    else if (!strcmp(f, "--max-norm")) rc = mlp__cli_float(f, v, 0, 1e9, &t->max_norm);
    else if (!strcmp(f, "--diverge-factor")) {
        rc = mlp__cli_float(f, v, 0, 1e30, &t->diverge_factor);
        if (t->diverge_factor == 0.0f) t->diverge_factor = -1.0f; /* 0 on the command line: off */
    }
    else if (!strcmp(f, "--lr-decay")) rc = mlp__cli_float(f, v, 1e-9, 1e6, &t->lr_decay);
    else if (!strcmp(f, "--lr-step")) rc = mlp__cli_int(f, v, 1, 100000, &t->lr_step);
    else if (!strcmp(f, "--warmup")) rc = mlp__cli_int(f, v, 0, 100000, &t->warmup_epochs);
    else if (!strcmp(f, "--threads")) rc = mlp__cli_int(f, v, 1, MLP_MAX_THREADS, &o->threads);
    else if (!strcmp(f, "--seed") && (rc = mlp__cli_int(f, v, 0, 2147483647, &seed)) == 1) t->seed = (uint64_t)seed;
    return rc;
}

MLPDEF const char *mlp_cli_help(void)
{
    return
        "  --layers SPEC         widths, input first, e.g. 784-256-128-10; \"auto\" as the first or\n"
        "                        last width takes the data's (e.g. auto-64-auto)\n"
        "  --act relu|sigmoid|tanh   hidden activation (default relu)\n"
        "  --loss ce|mse         softmax cross-entropy or Euclidean (default ce)\n"
        "  --init auto|uniform|glorot|he   weight initialisation (default auto: He before\n"
        "                        ReLU, Glorot otherwise; uniform: U(-1/sqrt(n_in), 1/sqrt(n_in)))\n"
        "  --batchnorm           batch normalisation before every hidden activation\n"
        "  --dropout X           drop a fraction X of every hidden layer's units in training\n"
        "  --dropout-input X     ... and of the inputs\n"
        "  --epochs N            passes over the training set\n"
        "  --batch N             mini-batch size\n"
        "  --optimizer sgd|nesterov|adam|adamw   (--momentum for sgd/nesterov)\n"
        "  --lr X                learning rate\n"
        "  --momentum X          SGD momentum (default 0.9)\n"
        "  --weight-decay X      L2 weight decay (default 0)\n"
        "  --beta1 X --beta2 X   Adam's moment decay rates (default 0.9, 0.999)\n"
        "  --clip-norm X         rescale each batch's gradient to at most this L2 norm\n"
        "  --max-norm X          cap the L2 norm of each unit's incoming weights\n"
        "  --diverge-factor X    stop (exit 1, --out untouched) when the running loss passes X\n"
        "                        times what guessing costs, or a ReLU layer dies (default 50;\n"
        "                        0: never)\n"
        "  --schedule step|exp|cosine   learning-rate schedule (default step: --lr-decay\n"
        "                        every --lr-step epochs; exp: --lr-decay every epoch;\n"
        "                        cosine: to 0 at --epochs after --warmup N epochs)\n"
        "  --lr-decay X          the step and exp schedules' factor\n"
        "  --lr-step K           the step schedule's period in epochs (default 3)\n"
        "  --seed N              random seed for initialisation and shuffling (default 1)\n"
        "  --threads N           worker threads (default 1; results do not depend on N)\n"
        "  --log FILE.csv        per-epoch CSV log\n"
        "  --out FILE.mlp        where to save the trained model (default model.mlp)\n"
        "  --export-c FILE.h     also write the model as a standalone C header (mlp_export_c)\n"
        "  --export-c-int8 FILE.h  ... with 8-bit integer weights (mlp_export_c_int8); prints\n"
        "                        the test accuracy of that model beside the float one's\n"
        "  --export-name NAME    their prefix: NAME_predict, NAME_INPUTS... (default mlp_model)\n"
        "  --quiet               no progress bar (it is also off when stderr is not a terminal)\n";
}

/* spec with "auto" as its first width replaced by n_in, as its last by n_out */
static int mlp__cli_spec(const char *spec, int n_in, int n_out, char *out, size_t cap)
{
    size_t len = strlen(spec);
    const char *body = spec, *tail = "";
    char first[16] = "", last[16] = "";
    int head_auto = strncmp(spec, "auto-", 5) == 0, tail_auto = len > 5 && strcmp(spec + len - 5, "-auto") == 0;
    if (head_auto) { if (n_in < 1) goto unknown; snprintf(first, sizeof first, "%d-", n_in); body += 5; }
    if (tail_auto) { if (n_out < 1) goto unknown; snprintf(last, sizeof last, "-%d", n_out); tail = "-auto"; }
    if (strlen(first) + strlen(body) + strlen(last) >= cap) return mlp__fail(MLP_EARG, "layer spec \"%.80s\" is too long", spec);
    snprintf(out, cap, "%s%.*s%s", first, (int)(strlen(body) - strlen(tail)), body, last);
    return MLP_OK;
unknown:
    return mlp__fail(MLP_EARG, "layer spec \"%.80s\": \"auto\" needs the data's widths, unknown here", spec);
}

MLPDEF mlp_net *mlp_cli_create(const mlp_cli *o, int n_in, int n_out)
{
    char spec[1024];
    mlp_net *net;
    if (!o || !o->layers) { mlp__fail(MLP_EARG, "mlp_cli_create: NULL argument"); return NULL; }
    if (mlp__cli_spec(o->layers, n_in, n_out, spec, sizeof spec) != MLP_OK) return NULL;
    if (!(net = mlp_create_spec(spec, o->act, o->loss, o->train.seed))) return NULL;
    if (mlp_set_threads(net, o->threads) != MLP_OK || mlp_init_weights(net, o->init, o->train.seed) != MLP_OK ||
        (o->batchnorm && mlp_add_batchnorm(net) != MLP_OK) ||
        ((o->dropout > 0 || o->dropout_input > 0) && mlp_add_dropout(net, o->dropout_input, o->dropout) != MLP_OK)) {
        mlp_free(net);
        return NULL;
    }
    return net;
}

#ifndef MLP_NO_STDIO
MLPDEF int mlp_cli_export(const mlp_cli *o, const mlp_net *net, const mlp_dataset *test, mlp_eval *int8)
{
    mlp_net *rounded;
    int rc = MLP_OK;
    if (!o || !net) return mlp__fail(MLP_EARG, "mlp_cli_export: NULL argument");
    if (int8) memset(int8, 0, sizeof *int8);
    if (o->export_c && (rc = mlp_export_c(net, o->export_c, o->export_name)) != MLP_OK) return rc;
    if (!o->export_c_int8) return MLP_OK;
    if ((rc = mlp_export_c_int8(net, o->export_c_int8, o->export_name)) != MLP_OK || !test || !int8) return rc;
    if (!(rounded = mlp_clone(net))) return MLP_ENOMEM;
    if ((rc = mlp_quantize_int8(rounded)) == MLP_OK) rc = mlp_evaluate(rounded, test, 1000, int8, NULL);
    mlp_free(rounded);
    return rc;
}
#endif

/* ---- IDX files ----------------------------------------------------------- */
/* Format: 0x00 0x00 TYPE NDIMS, then NDIMS big-endian uint32 sizes, then the
   elements, big-endian, row-major. */

static uint32_t mlp__be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int mlp__idx_elem_size(int type)
{
    switch (type) {
    case MLP_IDX_U8: case MLP_IDX_S8: return 1;
    case MLP_IDX_I16: return 2;
    case MLP_IDX_I32: case MLP_IDX_F32: return 4;
    case MLP_IDX_F64: return 8;
    default: return 0;
    }
}

static float mlp__idx_elem(int type, const unsigned char *p)
{
    uint32_t u;
    switch (type) {
    case MLP_IDX_U8: return (float)p[0];
    case MLP_IDX_S8: return (float)(signed char)p[0];
    case MLP_IDX_I16: return (float)(int16_t)(uint16_t)((p[0] << 8) | p[1]);
    case MLP_IDX_I32: return (float)(int32_t)mlp__be32(p);
    case MLP_IDX_F32: { float f; u = mlp__be32(p); memcpy(&f, &u, 4); return f; }
    default: {
        double d;
        uint64_t v = ((uint64_t)mlp__be32(p) << 32) | mlp__be32(p + 4);
        memcpy(&d, &v, 8);
        return (float)d;
    }
    }
}

/* Validates the header in bytes[0..n_bytes) and fills idx's shape fields.
   *header_len gets the header size and *body_len the body size it implies. */
static int mlp__idx_parse_header(mlp_idx *idx, const unsigned char *h, size_t n_bytes,
                                 const char *name, size_t *header_len, size_t *body_len)
{
    int i, es;
    size_t count = 1;
    if (n_bytes < 4) return mlp__fail(MLP_EFORMAT, "%s: truncated header (%llu bytes)", name, (unsigned long long)n_bytes);
    if (h[0] != 0 || h[1] != 0)
        return mlp__fail(MLP_EFORMAT, "%s: bad magic %02x %02x (not an IDX file)", name, h[0], h[1]);
    es = mlp__idx_elem_size(h[2]);
    if (!es) return mlp__fail(MLP_EFORMAT, "%s: unknown element type 0x%02x", name, h[2]);
    if (h[3] < 1 || h[3] > MLP_IDX_MAX_DIMS)
        return mlp__fail(MLP_EFORMAT, "%s: %d dimensions (need 1..%d)", name, h[3], MLP_IDX_MAX_DIMS);
    idx->type = h[2];
    idx->ndims = h[3];
    *header_len = 4 + 4 * (size_t)idx->ndims;
    if (n_bytes < *header_len) return mlp__fail(MLP_EFORMAT, "%s: truncated header (%llu of %llu bytes)", name, (unsigned long long)n_bytes, (unsigned long long)*header_len);
    for (i = 0; i < idx->ndims; i++) {
        idx->dims[i] = mlp__be32(h + 4 + 4 * i);
        if (idx->dims[i] == 0) return mlp__fail(MLP_EFORMAT, "%s: dimension %d is 0", name, i);
        if (idx->dims[i] > MLP_IDX_MAX_ELEMS / count)
            return mlp__fail(MLP_EFORMAT, "%s: dimensions too large (over %llu elements)", name, (unsigned long long)MLP_IDX_MAX_ELEMS);
        count *= idx->dims[i];
    }
    idx->count = count;
    *body_len = count * (size_t)es;
    return MLP_OK;
}

static int mlp__idx_convert(mlp_idx *idx, const unsigned char *body, const char *name)
{
    size_t i, es = (size_t)mlp__idx_elem_size(idx->type);
    idx->data = (float *)mlp__alloc_rows(idx->count, sizeof(float), 1);
    if (!idx->data) return mlp__fail(MLP_ENOMEM, "%s: out of memory for %llu elements", name, (unsigned long long)idx->count);
    for (i = 0; i < idx->count; i++) idx->data[i] = mlp__idx_elem(idx->type, body + i * es);
    return MLP_OK;
}

/* gzip (RFC 1952) around an IDX file: the header's optional fields
   skipped within bounds, the body inflated by the caller's MLP_INFLATE
   into exactly the size the trailer states (bounded by what deflate can
   expand the stream to, so a lying trailer cannot make us allocate much),
   and the CRC-32 checked. *out is the caller's to free. */
static int mlp__is_gzip(const unsigned char *p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

/* little-endian, as gzip and model files store integers */
static uint32_t mlp__get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#ifdef MLP_INFLATE

static int mlp__gzip_skip_string(const unsigned char *p, size_t n, size_t *pos)
{
    while (*pos < n && p[*pos]) (*pos)++;
    if (*pos >= n) return 0;
    (*pos)++;
    return 1;
}

static int mlp__gunzip(const unsigned char *p, size_t n, const char *name, unsigned char **out, size_t *out_n)
{
    size_t pos = 10, size;
    int flags, got;
    uint32_t crc;
    *out = NULL;
    if (n < 18) return mlp__fail(MLP_EFORMAT, "%s: truncated gzip stream (%llu bytes)", name, (unsigned long long)n);
    if (p[2] != 8) return mlp__fail(MLP_EFORMAT, "%s: gzip compression method %d (only deflate, 8, exists)", name, p[2]);
    flags = p[3];
    if (flags & 0xe0) return mlp__fail(MLP_EFORMAT, "%s: reserved gzip flags set (0x%02x)", name, flags);
    if (flags & 4) { /* FEXTRA: a length, then that many bytes */
        size_t extra = (size_t)p[10] | (size_t)p[11] << 8;
        pos = 12 + extra;
    }
    if (((flags & 8) && !mlp__gzip_skip_string(p, n, &pos)) || ((flags & 16) && !mlp__gzip_skip_string(p, n, &pos)))
        return mlp__fail(MLP_EFORMAT, "%s: truncated gzip header (a name or comment never ends)", name);
    if (flags & 2) pos += 2; /* FHCRC */
    if (pos > n || n - pos < 8) return mlp__fail(MLP_EFORMAT, "%s: truncated gzip stream (%llu bytes)", name, (unsigned long long)n);
    crc = mlp__get_u32(p + n - 8);
    size = mlp__get_u32(p + n - 4);
    /* deflate expands at most 1032:1 */
    if ((double)size > 1032.0 * (double)(n - pos - 8) + 1024.0 || n - pos > 0x7fffffffu || size > 0x7fffffffu)
        return mlp__fail(MLP_EFORMAT, "%s: the gzip trailer claims %llu bytes from %llu compressed (corrupt, or over 2 GiB)",
                         name, (unsigned long long)size, (unsigned long long)(n - pos - 8));
    if (!(*out = (unsigned char *)mlp__alloc(size ? size : 1, 1, 1))) return MLP_ENOMEM;
    /* the trailer goes too: a decoder may look a few bytes past the last
       block before it sees that it is the last (stb_image's does) */
    got = MLP_INFLATE((char *)*out, (int)size, (const char *)p + pos, (int)(n - pos));
    if (got < 0 || (size_t)got != size || mlp_crc32(*out, size) != crc) {
        MLP_FREE(*out);
        *out = NULL;
        if (got < 0) return mlp__fail(MLP_EFORMAT, "%s: corrupt gzip stream (it does not inflate to the %llu bytes its trailer states)", name, (unsigned long long)size);
        if ((size_t)got != size) return mlp__fail(MLP_EFORMAT, "%s: corrupt gzip stream (%d bytes, its trailer says %llu)", name, got, (unsigned long long)size);
        return mlp__fail(MLP_EFORMAT, "%s: corrupt gzip stream (CRC-32 mismatch)", name);
    }
    *out_n = size;
    return MLP_OK;
}
#endif

static int mlp__idx_load_gzip(mlp_idx *idx, const unsigned char *p, size_t n, const char *name)
{
#ifdef MLP_INFLATE
    unsigned char *raw;
    size_t raw_n = 0;
    int rc;
    if ((rc = mlp__gunzip(p, n, name, &raw, &raw_n)) != MLP_OK) return rc;
    rc = mlp__is_gzip(raw, raw_n) ? mlp__fail(MLP_EFORMAT, "%s: gzip inside gzip", name) : mlp_idx_load_memory(idx, raw, raw_n, name);
    MLP_FREE(raw);
    return rc;
#else
    (void)idx; (void)p; (void)n;
    return mlp__fail(MLP_EFORMAT, "%s: gzip-compressed (1f 8b): gunzip it first, or build with MLP_INFLATE", name);
#endif
}

MLPDEF int mlp_idx_load_memory(mlp_idx *idx, const void *bytes, size_t n_bytes, const char *name)
{
    size_t header_len, body_len;
    int rc;
    const unsigned char *p = (const unsigned char *)bytes;
    if (!name) name = "IDX data";
    if (!idx) return mlp__fail(MLP_EARG, "%s: NULL idx", name);
    memset(idx, 0, sizeof *idx);
    if (!bytes && n_bytes) return mlp__fail(MLP_EARG, "%s: NULL bytes", name);
    if (mlp__is_gzip(p, n_bytes)) return mlp__idx_load_gzip(idx, p, n_bytes, name);
    if ((rc = mlp__idx_parse_header(idx, p, n_bytes, name, &header_len, &body_len)) != MLP_OK) return rc;
    if (n_bytes - header_len < body_len)
        return mlp__fail(MLP_EFORMAT, "%s: truncated body (%llu of %llu bytes)", name,
                         (unsigned long long)(n_bytes - header_len), (unsigned long long)body_len);
    if (n_bytes - header_len > body_len)
        return mlp__fail(MLP_EFORMAT, "%s: %llu bytes of trailing garbage after the data", name,
                         (unsigned long long)(n_bytes - header_len - body_len));
    return mlp__idx_convert(idx, p + header_len, name);
}

#ifndef MLP_NO_STDIO
/* Reads the header, checks the file length against it, and only then
   allocates: a lying header cannot make us allocate more than the file holds. */
MLPDEF int mlp_idx_load(mlp_idx *idx, const char *path)
{
    unsigned char header[4 + 4 * MLP_IDX_MAX_DIMS], *body = NULL;
    size_t got, header_len, body_len;
    long file_len = 0;
    int rc;
    FILE *f;
    if (!idx || !path) return mlp__fail(MLP_EARG, "mlp_idx_load: NULL argument");
    memset(idx, 0, sizeof *idx);
    if (!(f = fopen(path, "rb"))) return mlp__fail(MLP_EIO, "%s: cannot open", path);
    got = fread(header, 1, sizeof header, f);
    if (mlp__is_gzip(header, got)) { /* compressed: the whole file, then inflated in memory */
        rc = MLP_OK;
        if (fseek(f, 0, SEEK_END) != 0 || (file_len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
            rc = mlp__fail(MLP_EIO, "%s: cannot determine the file size", path);
        else if (!(body = (unsigned char *)mlp__alloc((size_t)file_len, 1, 1))) rc = MLP_ENOMEM;
        else if (fread(body, 1, (size_t)file_len, f) != (size_t)file_len) rc = mlp__fail(MLP_EIO, "%s: read error", path);
        fclose(f);
        if (rc == MLP_OK) rc = mlp_idx_load_memory(idx, body, (size_t)file_len, path);
        MLP_FREE(body);
        return rc;
    }
    rc = mlp__idx_parse_header(idx, header, got, path, &header_len, &body_len);
    if (rc == MLP_OK) {
        if (fseek(f, 0, SEEK_END) != 0 || (file_len = ftell(f)) < 0) rc = mlp__fail(MLP_EIO, "%s: cannot determine the file size", path);
        else if ((size_t)file_len - header_len < body_len)
            rc = mlp__fail(MLP_EFORMAT, "%s: truncated body (%llu of %llu bytes)", path, (unsigned long long)((size_t)file_len - header_len), (unsigned long long)body_len);
        else if ((size_t)file_len - header_len > body_len)
            rc = mlp__fail(MLP_EFORMAT, "%s: %llu bytes of trailing garbage after the data", path, (unsigned long long)((size_t)file_len - header_len - body_len));
        else if (fseek(f, (long)header_len, SEEK_SET) != 0) rc = mlp__fail(MLP_EIO, "%s: cannot seek", path);
    }
    if (rc == MLP_OK && !(body = (unsigned char *)mlp__alloc(body_len, 1, 1))) rc = MLP_ENOMEM;
    if (rc == MLP_OK && fread(body, 1, body_len, f) != body_len) rc = mlp__fail(MLP_EIO, "%s: read error", path);
    if (rc == MLP_OK) rc = mlp__idx_convert(idx, body, path);
    MLP_FREE(body);
    fclose(f);
    return rc;
}
#endif

MLPDEF void mlp_idx_free(mlp_idx *idx)
{
    if (!idx) return;
    MLP_FREE(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* ---- datasets ------------------------------------------------------------ */

#define MLP__MAX_LABEL 65535

MLPDEF int mlp_dataset_from_idx(mlp_dataset *ds, const mlp_idx *images, const mlp_idx *labels)
{
    size_t i, dim;
    int max_label = 0;
    float scale;
    if (!ds || !images || !labels || !images->data || !labels->data)
        return mlp__fail(MLP_EARG, "mlp_dataset_from_idx: NULL argument");
    memset(ds, 0, sizeof *ds);
    if (images->ndims < 2) return mlp__fail(MLP_EFORMAT, "images have %d dimension(s); need count x features", images->ndims);
    if (labels->ndims != 1 && !(labels->ndims == 2 && labels->dims[1] == 1))
        return mlp__fail(MLP_EFORMAT, "labels must be one-dimensional (got %d dimensions)", labels->ndims);
    if (images->dims[0] != labels->dims[0])
        return mlp__fail(MLP_EFORMAT, "%llu images but %llu labels", (unsigned long long)images->dims[0], (unsigned long long)labels->dims[0]);
    if (labels->type == MLP_IDX_F32 || labels->type == MLP_IDX_F64)
        return mlp__fail(MLP_EFORMAT, "labels must be integers, not floating point");
    dim = images->count / images->dims[0];
    if (dim > MLP_MAX_WIDTH || images->dims[0] > INT_MAX)
        return mlp__fail(MLP_EFORMAT, "images too large (%llu x %llu)", (unsigned long long)images->dims[0], (unsigned long long)dim);
    for (i = 0; i < labels->count; i++) {
        float v = labels->data[i];
        if (v < 0.0f || v > MLP__MAX_LABEL)
            return mlp__fail(MLP_EFORMAT, "label %.0f at index %llu is out of range (0..%d)", v, (unsigned long long)i, MLP__MAX_LABEL);
        if ((int)v > max_label) max_label = (int)v;
    }
    ds->x = (float *)mlp__alloc_rows(images->count, sizeof(float), 1);
    ds->y = (int *)mlp__alloc(labels->count, sizeof(int), 1);
    if (!ds->x || !ds->y) { mlp_dataset_free(ds); return MLP_ENOMEM; }
    scale = images->type == MLP_IDX_U8 ? 1.0f / 255.0f : 1.0f;
    for (i = 0; i < images->count; i++) ds->x[i] = images->data[i] * scale;
    for (i = 0; i < labels->count; i++) ds->y[i] = (int)labels->data[i];
    ds->n = (int)images->dims[0];
    ds->dim = (int)dim;
    ds->n_classes = max_label + 1;
    ds->scale = scale;
    if (images->ndims == 3) { ds->image_h = (int)images->dims[1]; ds->image_w = (int)images->dims[2]; }
    return MLP_OK;
}

#ifndef MLP_NO_STDIO
MLPDEF int mlp_dataset_load(mlp_dataset *ds, const char *images_path, const char *labels_path)
{
    mlp_idx images, labels;
    int rc;
    char msg[sizeof mlp__error_message];
    if (!ds) return mlp__fail(MLP_EARG, "mlp_dataset_load: NULL dataset");
    memset(ds, 0, sizeof *ds);
    if ((rc = mlp_idx_load(&images, images_path)) != MLP_OK) return rc;
    if ((rc = mlp_idx_load(&labels, labels_path)) != MLP_OK) { mlp_idx_free(&images); return rc; }
    rc = mlp_dataset_from_idx(ds, &images, &labels);
    if (rc != MLP_OK) {
        /* name both files: the problem is in how they fit together */
        memcpy(msg, mlp__error_message, sizeof msg);
        mlp__fail(rc, "%s + %s: %s", images_path, labels_path, msg);
    }
    mlp_idx_free(&images);
    mlp_idx_free(&labels);
    return rc;
}
#endif

MLPDEF int mlp_dataset_from_arrays(mlp_dataset *ds, const float *x, const int *y, int n, int dim, int ownership)
{
    size_t i, count;
    int max_label = 0;
    if (!ds) return mlp__fail(MLP_EARG, "mlp_dataset_from_arrays: NULL dataset");
    memset(ds, 0, sizeof *ds);
    if (!x || !y) return mlp__fail(MLP_EARG, "mlp_dataset_from_arrays: NULL inputs or labels");
    if (n < 1 || dim < 1 || dim > MLP_MAX_WIDTH)
        return mlp__fail(MLP_EARG, "mlp_dataset_from_arrays: %d rows of %d values (need n >= 1, 1 <= dim <= %d)", n, dim, MLP_MAX_WIDTH);
    if (ownership != MLP_DATASET_COPY && ownership != MLP_DATASET_BORROW)
        return mlp__fail(MLP_EARG, "mlp_dataset_from_arrays: ownership %d (MLP_DATASET_COPY or MLP_DATASET_BORROW)", ownership);
    count = (size_t)n * (size_t)dim;
    for (i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return mlp__fail(MLP_EFORMAT, "input %llu of row %llu is %g", (unsigned long long)(i % (size_t)dim),
                             (unsigned long long)(i / (size_t)dim), (double)x[i]);
    for (i = 0; i < (size_t)n; i++) {
        if (y[i] < 0 || y[i] > MLP__MAX_LABEL)
            return mlp__fail(MLP_EFORMAT, "label %d at index %llu is out of range (0..%d)", y[i], (unsigned long long)i, MLP__MAX_LABEL);
        if (y[i] > max_label) max_label = y[i];
    }
    if (ownership == MLP_DATASET_BORROW) {
        ds->x = (float *)(uintptr_t)x; /* never written through: the library only reads a data set */
        ds->y = (int *)(uintptr_t)y;
    } else {
        ds->x = (float *)mlp__alloc_rows(count, sizeof(float), 1);
        ds->y = (int *)mlp__alloc((size_t)n, sizeof(int), 1);
        if (!ds->x || !ds->y) { mlp_dataset_free(ds); return MLP_ENOMEM; }
        memcpy(ds->x, x, count * sizeof(float));
        memcpy(ds->y, y, (size_t)n * sizeof(int));
    }
    ds->n = n;
    ds->dim = dim;
    ds->n_classes = max_label + 1;
    ds->scale = 1.0f;
    return MLP_OK;
}

MLPDEF void mlp_dataset_free(mlp_dataset *ds)
{
    if (!ds) return;
    MLP_FREE(ds->x);
    MLP_FREE(ds->y); /* and the class names, which share its allocation */
    memset(ds, 0, sizeof *ds);
}

MLPDEF mlp_mat mlp_dataset_inputs(const mlp_dataset *ds)
{
    return ds ? mlp_mat_view(ds->x, ds->n, ds->dim, ds->dim) : mlp_mat_view(NULL, 0, 0, 0);
}

MLPDEF int mlp_dataset_check(const mlp_net *net, const mlp_dataset *ds)
{
    int i, n_out;
    if (!net || !ds || !ds->x || !ds->y || ds->n <= 0) return mlp__fail(MLP_EARG, "empty or NULL data set");
    if (ds->dim != mlp_input_width(net))
        return mlp__fail(MLP_EARG, "the data has %d features per sample but the network's input width is %d", ds->dim, mlp_input_width(net));
    n_out = mlp_output_width(net);
    for (i = 0; i < ds->n; i++)
        if (ds->y[i] < 0 || ds->y[i] >= n_out)
            return mlp__fail(MLP_EARG, "label %d of sample %d is not below the network's output width %d", ds->y[i], i, n_out);
    return MLP_OK;
}

/* ---- CSV files ----------------------------------------------------------- */
/* A CSV file is read line by line: a line is split into fields, each field
   unquoted into a scratch buffer, then read as a number or kept as a label.
   Every message names the line and column (both from 1). */

typedef struct mlp__csv {
    const char *name;
    int line, column;      /* where the field being read is, for messages */
    char *field;           /* the current field, unquoted, 0-terminated */
} mlp__csv;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static int mlp__csv_fail(const mlp__csv *c, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mlp__fail(MLP_EFORMAT, "%s: line %d, column %d: %s", c->name, c->line, c->column, what);
}

static const char *mlp__skip_blanks(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    return s;
}

/* Reads the field at *s (the line ends at e) into c->field and moves *s
   past it and its comma. Returns 1 when another field follows, 0 at the
   end of the line, or a negative code. */
static int mlp__csv_field(mlp__csv *c, const char **s, const char *e)
{
    const char *p = mlp__skip_blanks(*s, e);
    size_t n = 0;
    if (p < e && *p == '"') {
        for (p++;; p++) {
            if (p == e) return mlp__csv_fail(c, "a quote that is never closed");
            if (!*p) return mlp__csv_fail(c, "a 0 byte (is this a text file?)");
            if (*p == '"' && (p + 1 == e || p[1] != '"')) break;
            if (*p == '"') p++; /* "" stands for one quote */
            c->field[n++] = *p;
        }
        p = mlp__skip_blanks(p + 1, e);
        if (p < e && *p != ',') return mlp__csv_fail(c, "text after a closing quote");
    } else {
        const char *start = p;
        while (p < e && *p != ',') {
            if (*p == '"') return mlp__csv_fail(c, "a quote inside a field that does not start with one");
            if (!*p) return mlp__csv_fail(c, "a 0 byte (is this a text file?)");
            p++;
        }
        while (p > start && (p[-1] == ' ' || p[-1] == '\t')) p--;
        n = (size_t)(p - start);
        memcpy(c->field, start, n);
        p = mlp__skip_blanks(p, e);
    }
    c->field[n] = 0;
    *s = p < e ? p + 1 : p;
    return p < e;
}

/* A decimal number as people write them: [+-] digits [. digits] [e [+-]
   digits], either side of the point may be empty, not both. strtod alone
   would also take nan, inf, hex and leading junk. */
static int mlp__csv_number_syntax(const char *s)
{
    int digits = 0;
    if (*s == '+' || *s == '-') s++;
    for (; *s >= '0' && *s <= '9'; s++) digits++;
    if (*s == '.') for (s++; *s >= '0' && *s <= '9'; s++) digits++;
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (*s < '0' || *s > '9') return 0;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == 0;
}

static int mlp__csv_number(mlp__csv *c, float *out)
{
    const char *point = localeconv()->decimal_point;
    char *dot;
    float v;
    if (!c->field[0]) return mlp__csv_fail(c, "an empty field (missing values are not supported)");
    if (!mlp__csv_number_syntax(c->field)) return mlp__csv_fail(c, "\"%.40s\" is not a number", c->field);
    /* strtof reads the locale's decimal point: a program that called
       setlocale may have a comma there, and a CSV file has a '.' */
    if ((dot = strchr(c->field, '.')) && point && point[0] && !point[1]) *dot = point[0];
    v = strtof(c->field, NULL); /* straight to float: no second rounding */
    if (dot) *dot = '.';
    if (!isfinite(v)) return mlp__csv_fail(c, "%.40s is too large for a float", c->field);
    *out = v;
    return MLP_OK;
}

/* Fields in the line s..e (quotes respected), or a negative code. */
static int mlp__csv_count_fields(mlp__csv *c, const char *s, const char *e)
{
    int n = 0, more = 1, rc;
    while (more) {
        if (n > MLP_MAX_WIDTH) return mlp__csv_fail(c, "more than %d columns", MLP_MAX_WIDTH + 1);
        c->column = ++n;
        if ((more = rc = mlp__csv_field(c, &s, e)) < 0) return rc;
    }
    return n;
}

/* the line at s: its end (before any \r) in *e; the next line's start */
static const char *mlp__csv_line(const char *s, const char *end, const char **e)
{
    const char *nl = (const char *)memchr(s, '\n', (size_t)(end - s));
    const char *stop = nl ? nl : end;
    *e = stop > s && stop[-1] == '\r' ? stop - 1 : stop;
    return nl ? nl + 1 : end;
}

static int mlp__csv_blank(const char *s, const char *e) { return mlp__skip_blanks(s, e) == e; }

typedef struct mlp__label { const char *text; int index; } mlp__label;

static int mlp__cmp_labels(const void *a, const void *b)
{
    return strcmp(((const mlp__label *)a)->text, ((const mlp__label *)b)->text);
}

/* label text -> an integer 0..65535, or -1 */
static int mlp__label_integer(const char *s)
{
    long v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if ((v = v * 10 + (*s - '0')) > MLP__MAX_LABEL) return -1;
    }
    return (int)v;
}

/* Moves ds->y (n labels) into a new allocation that holds the class names
   after it, so mlp_dataset_free frees the names with y: it never touches
   class_names itself, which a data set filled in by hand may not have set. */
static int mlp__labels_with_names(mlp_dataset *ds, int n, const char **names, const size_t *lens, int n_names)
{
    size_t at = ((size_t)n * sizeof(int) + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
    size_t size = mlp__names_size(lens, n_names);
    char *mem;
    if (size > MLP_MAX_ALLOC - at || !(mem = (char *)mlp__alloc(at + size, 1, 1))) return MLP_ENOMEM;
    memcpy(mem, ds->y, (size_t)n * sizeof(int));
    MLP_FREE(ds->y);
    ds->y = (int *)(void *)mem;
    ds->class_names = mlp__names_fill(mem + at, (const char *const *)names, lens, n_names);
    return MLP_OK;
}

/* Turns the n label texts (row order) into ds->y, ds->n_classes and
   ds->class_names, through classes_of's mapping when given. */
static int mlp__csv_labels(mlp__csv *c, mlp_dataset *ds, char **texts, const int *lines, int n, const mlp_dataset *classes_of)
{
    mlp__label *known = NULL, key, *hit;
    int i, k, words = 0, n_known = 0, rc = MLP_OK;
    for (i = 0; i < n; i++) words |= mlp__label_integer(texts[i]) < 0;
    if (classes_of && classes_of->class_names) words = 1; /* "3" can be a name too */
    if (!words) {
        int limit = classes_of ? classes_of->n_classes : MLP__MAX_LABEL + 1;
        for (i = 0; i < n; i++) {
            ds->y[i] = mlp__label_integer(texts[i]);
            if (ds->y[i] >= limit) {
                c->line = lines[i];
                return mlp__csv_fail(c, "label %d, but the training data has %d classes", ds->y[i], limit);
            }
            if (ds->y[i] >= ds->n_classes) ds->n_classes = ds->y[i] + 1;
        }
        if (classes_of) ds->n_classes = classes_of->n_classes;
        return MLP_OK;
    }
    if (classes_of && !classes_of->class_names) { /* the training data's classes are numbers */
        for (i = 0; mlp__label_integer(texts[i]) >= 0; i++) {}
        c->line = lines[i];
        return mlp__csv_fail(c, "class \"%.40s\", but the training data's classes are numbers", texts[i]);
    }
    /* names: the known ones (classes_of's) or the distinct ones, sorted */
    n_known = classes_of ? classes_of->n_classes : n;
    if (!(known = (mlp__label *)mlp__alloc((size_t)n_known, sizeof *known, 1))) return MLP_ENOMEM;
    for (i = 0; i < n_known; i++) {
        known[i].text = classes_of ? classes_of->class_names[i] : texts[i];
        known[i].index = i;
        if (!classes_of && !mlp__name_ok(texts[i], strlen(texts[i]))) {
            c->line = lines[i];
            MLP_FREE(known);
            return mlp__csv_fail(c, "label \"%.40s\" is empty, longer than %d bytes or has a control character", texts[i], MLP_MAX_NAME);
        }
    }
    qsort(known, (size_t)n_known, sizeof *known, mlp__cmp_labels);
    if (!classes_of) { /* keep one of each name; its rank is its class */
        for (i = k = 0; i < n_known; i++)
            if (k == 0 || strcmp(known[k - 1].text, known[i].text) != 0) known[k++] = known[i];
        n_known = k;
        if (n_known > MLP__MAX_LABEL + 1) {
            MLP_FREE(known);
            return mlp__csv_fail(c, "%d different labels; at most %d classes", n_known, MLP__MAX_LABEL + 1);
        }
        for (i = 0; i < n_known; i++) known[i].index = i;
    }
    for (i = 0; i < n && rc == MLP_OK; i++) {
        key.text = texts[i];
        if ((hit = (mlp__label *)bsearch(&key, known, (size_t)n_known, sizeof *known, mlp__cmp_labels)))
            ds->y[i] = hit->index;
        else {
            c->line = lines[i];
            rc = mlp__csv_fail(c, "class \"%.40s\" is not one of the training data's %d classes", texts[i], n_known);
        }
    }
    if (rc == MLP_OK) {
        const char **names = (const char **)mlp__alloc((size_t)n_known, sizeof(char *), 1);
        size_t *lens = (size_t *)mlp__alloc((size_t)n_known, sizeof(size_t), 1);
        for (i = 0; names && lens && i < n_known; i++) {
            names[known[i].index] = known[i].text;
            lens[known[i].index] = strlen(known[i].text);
        }
        ds->n_classes = n_known;
        if (!names || !lens || (rc = mlp__labels_with_names(ds, n, names, lens, n_known)) != MLP_OK) rc = MLP_ENOMEM;
        MLP_FREE(names);
        MLP_FREE(lens);
    }
    MLP_FREE(known);
    return rc;
}

/* Lines that hold something, after the header; an empty line followed by
   data is an error. */
static int mlp__csv_count_rows(mlp__csv *c, const char *s, const char *end)
{
    int rows = 0, blank_at = 0;
    const char *e;
    for (c->line = 1; s < end; c->line++) {
        const char *next = mlp__csv_line(s, end, &e);
        if (mlp__csv_blank(s, e)) { if (!blank_at) blank_at = c->line; }
        else if (blank_at) { c->line = blank_at; c->column = 1; return mlp__csv_fail(c, "an empty line before more data"); }
        else if (rows++ == INT_MAX - 1) return mlp__csv_fail(c, "too many lines");
        s = next;
    }
    return rows;
}

/* One data line into x (dim inputs) and its label text into *label. */
static int mlp__csv_row(mlp__csv *c, const char *s, const char *e, int n_cols, int label_col, float *x, char **label, char **text_at)
{
    int col, more = 1, rc;
    for (col = 0; col < n_cols; col++) {
        c->column = col + 1;
        if (!more) return mlp__csv_fail(c, "the line ends after %d fields; the first line has %d", col, n_cols);
        if ((more = rc = mlp__csv_field(c, &s, e)) < 0) return rc;
        if (col == label_col) {
            size_t n = strlen(c->field);
            if (!n) return mlp__csv_fail(c, "an empty label");
            memcpy(*text_at, c->field, n + 1);
            *label = *text_at;
            *text_at += n + 1;
        } else if ((rc = mlp__csv_number(c, x++)) != MLP_OK) return rc;
    }
    c->column = n_cols + 1;
    if (more) return mlp__csv_fail(c, "more than the %d fields of the first line", n_cols);
    return MLP_OK;
}

static int mlp__csv_parse(mlp__csv *c, mlp_dataset *ds, const char *s, const char *end, int label_column,
                          int has_header, const mlp_dataset *classes_of)
{
    const char *e, *next;
    int n_cols, rows, label_col, dim, i, rc = MLP_OK, *lines = NULL;
    char **texts = NULL, *text_at, *text_buf = NULL;
    if (end - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* a UTF-8 byte order mark */
    c->line = c->column = 1;
    if ((rows = mlp__csv_count_rows(c, s, end)) < 0) return rows;
    if (rows == 0) return mlp__csv_fail(c, "no data (the file is empty)");
    next = mlp__csv_line(s, end, &e);
    c->line = 1;
    if ((n_cols = mlp__csv_count_fields(c, s, e)) < 0) return n_cols;
    label_col = label_column == MLP_CSV_LAST ? n_cols - 1 : label_column;
    c->column = 1;
    if (label_col >= n_cols) return mlp__csv_fail(c, "label column %d, but the lines have %d columns (0..%d)", label_col, n_cols, n_cols - 1);
    dim = n_cols - (label_col >= 0);
    if (dim < 1) return mlp__csv_fail(c, "no input columns besides the label");
    if (has_header) { s = next; rows--; }
    if (rows == 0) return mlp__csv_fail(c, "no data after the header");
    ds->x = (float *)mlp__alloc_rows((size_t)rows, (size_t)dim, sizeof(float));
    ds->y = (int *)mlp__calloc((size_t)rows, sizeof(int), 1);
    if (label_col >= 0) {
        texts = (char **)mlp__alloc((size_t)rows, sizeof(char *), 1);
        lines = (int *)mlp__alloc((size_t)rows, sizeof(int), 1);
        text_buf = (char *)mlp__alloc((size_t)(end - s) + (size_t)rows, 1, 1); /* every label fits, unquoted */
    }
    if (!ds->x || !ds->y || (label_col >= 0 && (!texts || !lines || !text_buf))) rc = MLP_ENOMEM;
    text_at = text_buf;
    for (i = 0, c->line = 1 + !!has_header; rc == MLP_OK && i < rows; c->line++) {
        next = mlp__csv_line(s, end, &e);
        if (!mlp__csv_blank(s, e)) {
            if (lines) lines[i] = c->line;
            rc = mlp__csv_row(c, s, e, n_cols, label_col, ds->x + (size_t)i * dim, texts ? texts + i : NULL, &text_at);
            i++;
        }
        s = next;
    }
    ds->n = rows;
    ds->dim = dim;
    ds->scale = 1.0f;
    if (rc == MLP_OK && label_col >= 0) {
        c->column = label_col + 1;
        rc = mlp__csv_labels(c, ds, texts, lines, rows, classes_of);
    }
    MLP_FREE(texts);
    MLP_FREE(lines);
    MLP_FREE(text_buf);
    return rc;
}

MLPDEF int mlp_dataset_parse_csv(mlp_dataset *ds, const char *text, size_t len, const char *name,
                                 int label_column, int has_header, const mlp_dataset *classes_of)
{
    mlp__csv c;
    const char *s, *e, *end;
    size_t longest = 0;
    int rc;
    if (!ds) return mlp__fail(MLP_EARG, "mlp_dataset_parse_csv: NULL dataset");
    memset(ds, 0, sizeof *ds);
    if (!text && len) return mlp__fail(MLP_EARG, "mlp_dataset_parse_csv: NULL text");
    if (label_column < MLP_CSV_NONE) return mlp__fail(MLP_EARG, "mlp_dataset_parse_csv: label column %d", label_column);
    if (classes_of && (classes_of->n_classes < 1 || classes_of->n_classes > MLP__MAX_LABEL + 1))
        return mlp__fail(MLP_EARG, "mlp_dataset_parse_csv: classes_of has %d classes", classes_of->n_classes);
    memset(&c, 0, sizeof c);
    c.name = name ? name : "CSV";
    c.line = c.column = 1;
    if (!text) text = "";
    for (s = text, end = text + len; s < end; c.line++) { /* the longest line sizes the field buffer */
        const char *next = mlp__csv_line(s, end, &e);
        if ((size_t)(e - s) > MLP_CSV_MAX_LINE) return mlp__csv_fail(&c, "the line is longer than %d bytes", MLP_CSV_MAX_LINE);
        if ((size_t)(e - s) > longest) longest = (size_t)(e - s);
        s = next;
    }
    if (!(c.field = (char *)mlp__alloc(longest + 1, 1, 1))) return MLP_ENOMEM;
    rc = mlp__csv_parse(&c, ds, text, end, label_column, has_header, classes_of);
    MLP_FREE(c.field);
    if (rc != MLP_OK) mlp_dataset_free(ds);
    return rc;
}

#ifndef MLP_NO_STDIO
MLPDEF int mlp_dataset_load_csv(mlp_dataset *ds, const char *path, int label_column, int has_header,
                                const mlp_dataset *classes_of)
{
    size_t size;
    unsigned char *buf;
    int rc;
    if (!ds) return mlp__fail(MLP_EARG, "mlp_dataset_load_csv: NULL dataset");
    memset(ds, 0, sizeof *ds);
    if (!path) return mlp__fail(MLP_EARG, "mlp_dataset_load_csv: NULL path");
    if ((rc = mlp__read_file(path, &buf, &size)) != MLP_OK) return rc;
    rc = mlp_dataset_parse_csv(ds, (const char *)buf, size, path, label_column, has_header, classes_of);
    MLP_FREE(buf);
    return rc;
}

MLPDEF int mlp_csv_find_column(const char *path, const char *column_name)
{
    size_t size;
    unsigned char *buf;
    const char *s, *e;
    mlp__csv c;
    int more = 1, col = -1, found = -1;
    if (!path || !column_name) return mlp__fail(MLP_EARG, "mlp_csv_find_column: NULL argument");
    if ((more = mlp__read_file(path, &buf, &size)) != MLP_OK) return more;
    more = 1;
    memset(&c, 0, sizeof c);
    c.name = path;
    c.line = c.column = 1;
    s = (const char *)buf;
    if (size >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
    mlp__csv_line(s, (const char *)buf + size, &e);
    if ((size_t)(e - s) > MLP_CSV_MAX_LINE) more = mlp__csv_fail(&c, "the line is longer than %d bytes", MLP_CSV_MAX_LINE);
    else if (!(c.field = (char *)mlp__alloc((size_t)(e - s) + 1, 1, 1))) more = MLP_ENOMEM;
    while (more > 0 && found < 0) {
        c.column = ++col + 1;
        if ((more = mlp__csv_field(&c, &s, e)) >= 0 && strcmp(c.field, column_name) == 0) found = col;
    }
    MLP_FREE(c.field);
    MLP_FREE(buf);
    if (found >= 0) return found;
    if (more < 0) return more;
    return mlp__fail(MLP_EARG, "%s: no column named \"%.80s\" in the first line", path, column_name);
}
#endif

MLPDEF int mlp_dataset_split(mlp_dataset *ds, mlp_dataset *held_out, int n_held_out, uint64_t seed)
{
    mlp_rng rng;
    float *tmp;
    size_t row;
    int i;
    if (!ds || !held_out || !ds->x || !ds->y) return mlp__fail(MLP_EARG, "mlp_dataset_split: NULL or empty data set");
    if (n_held_out < 1 || n_held_out >= ds->n)
        return mlp__fail(MLP_EARG, "mlp_dataset_split: holding out %d of %d samples leaves none on one side", n_held_out, ds->n);
    row = (size_t)ds->dim * sizeof(float);
    if (!(tmp = (float *)mlp__alloc(row, 1, 1))) return MLP_ENOMEM;
    mlp_rng_seed(&rng, seed, 0x76616c); /* a stream of its own: "val" */
    for (i = ds->n - 1; i >= ds->n - n_held_out; i--) { /* partial Fisher-Yates from the end */
        int j = (int)mlp_rng_below(&rng, (uint32_t)i + 1), t = ds->y[i];
        float *xi = ds->x + (size_t)i * ds->dim, *xj = ds->x + (size_t)j * ds->dim;
        memcpy(tmp, xi, row); memcpy(xi, xj, row); memcpy(xj, tmp, row);
        ds->y[i] = ds->y[j]; ds->y[j] = t;
    }
    MLP_FREE(tmp);
    ds->n -= n_held_out;
    ds->shard_first = ds->shard_total = 0; /* its rows are mixed now */
    *held_out = *ds;
    held_out->n = n_held_out;
    held_out->x = ds->x + (size_t)ds->n * ds->dim;
    held_out->y = ds->y + ds->n;
    return MLP_OK;
}

MLPDEF int mlp_dataset_shard(const mlp_dataset *all, mlp_dataset *part, int rank, int n_ranks)
{
    int first, end;
    if (!all || !part || !all->x || !all->y) return mlp__fail(MLP_EARG, "mlp_dataset_shard: NULL or empty data set");
    if (n_ranks < 1 || rank < 0 || rank >= n_ranks || n_ranks > all->n)
        return mlp__fail(MLP_EARG, "mlp_dataset_shard: rank %d of %d for %d samples", rank, n_ranks, all->n);
    first = (int)((long long)all->n * rank / n_ranks);
    end = (int)((long long)all->n * (rank + 1) / n_ranks);
    *part = *all;
    part->x = all->x + (size_t)first * all->dim;
    part->y = all->y + first;
    part->n = end - first;
    part->shard_first = first;
    part->shard_total = all->n;
    return MLP_OK;
}

/* ds's inputs x -> x scale + offset, column by column; a value that
   leaves the float range (a column of almost equal training values, then
   a far one) is an error, not an infinity left for training to meet */
static int mlp__apply_columns(mlp_dataset *ds, const float *scale, const float *offset, const char *which)
{
    size_t i, n = (size_t)ds->n * (size_t)ds->dim;
    for (i = 0; i < n; i++) {
        float v = ds->x[i] * scale[i % (size_t)ds->dim] + offset[i % (size_t)ds->dim];
        if (!isfinite(v))
            return mlp__fail(MLP_ENUMERIC, "mlp_dataset_standardize: input %d of %s sample %d is %g after standardising",
                             (int)(i % (size_t)ds->dim), which, (int)(i / (size_t)ds->dim), (double)v);
        ds->x[i] = v;
    }
    return MLP_OK;
}

MLPDEF int mlp_dataset_standardize(mlp_net *net, mlp_dataset *train, mlp_dataset *other)
{
    double *sum;
    float *scale, *offset;
    int i, j, dim, rc = MLP_OK;
    if (!net || !train || !train->x || train->n < 1) return mlp__fail(MLP_EARG, "mlp_dataset_standardize: NULL or empty data set");
    dim = train->dim;
    if (dim != mlp_input_width(net) || (other && other->dim != dim))
        return mlp__fail(MLP_EARG, "mlp_dataset_standardize: %d inputs for a network of input width %d", other && other->dim != dim ? other->dim : dim,
                         mlp_input_width(net));
    sum = (double *)mlp__calloc((size_t)dim, 2 * sizeof(double), 1);
    scale = (float *)mlp__alloc((size_t)dim, 2 * sizeof(float), 1);
    if (!sum || !scale) { MLP_FREE(sum); MLP_FREE(scale); return MLP_ENOMEM; }
    offset = scale + dim;
    for (i = 0; i < train->n; i++)
        for (j = 0; j < dim; j++) sum[j] += train->x[(size_t)i * dim + j];
    for (j = 0; j < dim; j++) sum[j] /= train->n; /* now the mean */
    for (i = 0; i < train->n; i++)
        for (j = 0; j < dim; j++) {
            double d = train->x[(size_t)i * dim + j] - sum[j];
            sum[dim + j] += d * d;
        }
    for (j = 0; j < dim; j++) {
        double sd = sqrt(sum[dim + j] / train->n);
        scale[j] = sd > 0.0 && isfinite((float)(1.0 / sd)) ? (float)(1.0 / sd) : 1.0f;
        offset[j] = (float)(-sum[j] * scale[j]);
        if (!isfinite(offset[j])) { scale[j] = 1.0f; offset[j] = (float)-sum[j]; } /* a spread too small for floats */
    }
    rc = mlp_set_input_columns(net, scale, offset);
    if (rc == MLP_OK) rc = mlp__apply_columns(train, scale, offset, "training");
    if (rc == MLP_OK && other) rc = mlp__apply_columns(other, scale, offset, "other");
    MLP_FREE(sum);
    MLP_FREE(scale);
    return rc;
}

/* ---- model files --------------------------------------------------------- */
/* Layout (all integers little-endian, floats IEEE-754 binary32 little-endian,
   whatever the host):

     offset size  field
        0    8    magic 89 4D 4C 50 0D 0A 1A 0A  ("\x89MLP\r\n\x1a\n")
        8    4    u32 format version = 1
       12    4    u32 flags = 0 (reserved; a reader of version 1 rejects others)
       16    4    u32 loss: 0 softmax cross-entropy, 1 Euclidean
       20    4    u32 input image width  (0 if the input is not an image)
       24    4    u32 input image height (width x height = input width)
       28    4    f32 input scale  \  network input = raw value * scale + offset
       32    4    f32 input offset /  (raw MNIST pixels are 0..255)
       36    4    u32 number of records, L (1 .. 4 * MLP_MAX_LAYERS + 2)
       40         L records, each: u32 kind, u32 payload bytes P, P bytes:
                    kind 1, dense: u32 n_in, u32 n_out, f32 W[n_in][n_out],
                                   f32 b[n_out];  P = 8 + 4 (n_in n_out + n_out)
                    kind 2, activation: u32 function (1 ReLU, 2 sigmoid,
                                   3 tanh), u32 width;  P = 8
                    kind 3, dropout: f32 rate (0 < rate < 1), u32 width; P = 8;
                                   first (on the input) or after an activation
                    kind 4, batchnorm: u32 width n, f32 eps, f32 momentum,
                                   f32 gamma[n], beta[n], running mean[n],
                                   running variance[n]; P = 12 + 16 n;
                                   right after a dense layer of width n
                                   (written since mlp.h 0.2)
                    kind 5, input columns: u32 n (the input width), f32
                                   scale[n], f32 offset[n]; P = 4 + 8 n;
                                   input j = (raw_j * input scale + input
                                   offset) * scale[j] + offset[j]; the first
                                   record when present (since mlp.h 0.5)
                    kind 6, class names: u32 n (the output width), then n
                                   times u32 length (1..255) and that many
                                   bytes (none below 0x20 or 0x7F; names all
                                   different); the last record when present
                                   (since mlp.h 0.5)
                  A later version adds kinds; P lets a reader step over or
                  reject a record it does not know, with a precise message.
      end-4  4    u32 CRC-32 (IEEE, as zlib's crc32) of every byte before it
*/

#define MLP__MODEL_VERSION 1
#define MLP__MODEL_HEADER 40
#define MLP__REC_DENSE 1
#define MLP__REC_ACT 2
#define MLP__REC_DROPOUT 3
#define MLP__REC_BATCHNORM 4
#define MLP__REC_COLUMNS 5
#define MLP__REC_NAMES 6
#define MLP__MAX_RECORDS (4 * MLP_MAX_LAYERS + 2)
static const unsigned char mlp__model_magic[8] = {0x89, 'M', 'L', 'P', 0x0D, 0x0A, 0x1A, 0x0A};

MLPDEF uint32_t mlp_crc32(const void *data, size_t n)
{
    uint32_t table[256], crc = 0xFFFFFFFFu;
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    int k;
    if (!p) n = 0;
    for (i = 0; i < 256; i++) {
        uint32_t c = (uint32_t)i;
        for (k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

static void mlp__put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}


static void mlp__put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    mlp__put_u32(p, u);
}

static float mlp__get_f32(const unsigned char *p)
{
    uint32_t u = mlp__get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t mlp__act_code(mlp_act act)
{
    return act == MLP_ACT_RELU ? 1u : act == MLP_ACT_SIGMOID ? 2u : 3u;
}

/* payload bytes of the class-names record */
static size_t mlp__names_bytes(const mlp_net *net)
{
    size_t bytes = 4;
    int k;
    for (k = 0; k < mlp_output_width(net); k++) bytes += 4 + strlen(net->class_names[k]);
    return bytes;
}

static size_t mlp__put_floats(unsigned char *p, const float *v, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) mlp__put_f32(p + 4 * i, v[i]);
    return 4 * n;
}

/* The model's size in bytes; written to buf when cap suffices. */
static size_t mlp__save_model(const mlp_net *net, void *buf, size_t cap)
{
    size_t need = MLP__MODEL_HEADER + 4, off, n_in = (size_t)mlp_input_width(net);
    unsigned char *p = (unsigned char *)buf;
    int l, k;
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        need += 8 + (L->kind == MLP_LAYER_DENSE ? 8 + 4 * ((size_t)L->n_in * L->n_out + L->n_out)
                     : L->kind == MLP_LAYER_BATCHNORM ? 12 + 16 * (size_t)L->n_out : 8);
    }
    if (net->col_scale) need += 8 + 4 + 8 * n_in;
    if (net->class_names) need += 8 + mlp__names_bytes(net);
    if (!buf || cap < need) return need;
    memcpy(p, mlp__model_magic, 8);
    mlp__put_u32(p + 8, MLP__MODEL_VERSION);
    mlp__put_u32(p + 12, 0);
    mlp__put_u32(p + 16, net->loss == MLP_LOSS_CE ? 0u : 1u);
    mlp__put_u32(p + 20, (uint32_t)net->image_w);
    mlp__put_u32(p + 24, (uint32_t)net->image_h);
    mlp__put_f32(p + 28, net->input_scale);
    mlp__put_f32(p + 32, net->input_offset);
    mlp__put_u32(p + 36, (uint32_t)net->n_layers + !!net->col_scale + !!net->class_names);
    off = MLP__MODEL_HEADER;
    if (net->col_scale) {
        mlp__put_u32(p + off, MLP__REC_COLUMNS);
        mlp__put_u32(p + off + 4, (uint32_t)(4 + 8 * n_in));
        mlp__put_u32(p + off + 8, (uint32_t)n_in);
        off += 12;
        off += mlp__put_floats(p + off, net->col_scale, n_in);
        off += mlp__put_floats(p + off, net->col_offset, n_in);
    }
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind == MLP_LAYER_DENSE) {
            size_t nw = (size_t)L->n_in * L->n_out;
            mlp__put_u32(p + off, MLP__REC_DENSE);
            mlp__put_u32(p + off + 4, (uint32_t)(8 + 4 * (nw + (size_t)L->n_out)));
            mlp__put_u32(p + off + 8, (uint32_t)L->n_in);
            mlp__put_u32(p + off + 12, (uint32_t)L->n_out);
            off += 16;
            off += mlp__put_floats(p + off, L->W, nw);
            off += mlp__put_floats(p + off, L->b, (size_t)L->n_out);
        } else if (L->kind == MLP_LAYER_BATCHNORM) {
            const float *blocks[4];
            int k;
            blocks[0] = L->W; blocks[1] = L->b; blocks[2] = L->run_mean; blocks[3] = L->run_var;
            mlp__put_u32(p + off, MLP__REC_BATCHNORM);
            mlp__put_u32(p + off + 4, (uint32_t)(12 + 16 * (size_t)L->n_out));
            mlp__put_u32(p + off + 8, (uint32_t)L->n_out);
            mlp__put_f32(p + off + 12, L->eps);
            mlp__put_f32(p + off + 16, L->momentum);
            off += 20;
            for (k = 0; k < 4; k++) off += mlp__put_floats(p + off, blocks[k], (size_t)L->n_out);
        } else if (L->kind == MLP_LAYER_DROPOUT) {
            mlp__put_u32(p + off, MLP__REC_DROPOUT);
            mlp__put_u32(p + off + 4, 8);
            mlp__put_f32(p + off + 8, L->rate);
            mlp__put_u32(p + off + 12, (uint32_t)L->n_out);
            off += 16;
        } else {
            mlp__put_u32(p + off, MLP__REC_ACT);
            mlp__put_u32(p + off + 4, 8);
            mlp__put_u32(p + off + 8, mlp__act_code(L->act));
            mlp__put_u32(p + off + 12, (uint32_t)L->n_out);
            off += 16;
        }
    }
    if (net->class_names) {
        mlp__put_u32(p + off, MLP__REC_NAMES);
        mlp__put_u32(p + off + 4, (uint32_t)mlp__names_bytes(net));
        mlp__put_u32(p + off + 8, (uint32_t)mlp_output_width(net));
        off += 12;
        for (k = 0; k < mlp_output_width(net); k++) {
            size_t len = strlen(net->class_names[k]);
            mlp__put_u32(p + off, (uint32_t)len);
            memcpy(p + off + 4, net->class_names[k], len);
            off += 4 + len;
        }
    }
    mlp__put_u32(p + off, mlp_crc32(p, off));
    return need;
}

/* the size query and the write of the two *_save_memory calls */
static int mlp__sized_write(const char *what, size_t need, void *buf, size_t cap, size_t *size)
{
    *size = need;
    if (buf && cap < need)
        return mlp__fail(MLP_EARG, "%s: the buffer holds %llu bytes, %llu are needed", what,
                         (unsigned long long)cap, (unsigned long long)need);
    return MLP_OK;
}

MLPDEF int mlp_save_memory(const mlp_net *net, void *buf, size_t cap, size_t *size)
{
    int rc;
    if (size) *size = 0; /* on every failure below */
    if (!net || !size) return mlp__fail(MLP_EARG, "mlp_save_memory: NULL argument");
    if ((rc = mlp__sized_write("mlp_save_memory", mlp__save_model(net, NULL, 0), buf, cap, size)) != MLP_OK) return rc;
    if (buf) mlp__save_model(net, buf, cap);
    return MLP_OK;
}

/* The architecture read from a model's records: enough to call mlp_create. */
typedef struct mlp__arch {
    int n_sizes, sizes[MLP_MAX_LAYERS + 1];
    float input_rate, hidden_rate;   /* dropout */
    int hidden_dropouts, hidden_acts;
    mlp_act acts[MLP_MAX_LAYERS];
    size_t weights_at[MLP_MAX_LAYERS];   /* offset of each dense layer's W */
    int batchnorm[MLP_MAX_LAYERS];       /* a batchnorm record follows dense layer d */
    size_t batchnorm_at[MLP_MAX_LAYERS]; /* ... and its payload starts here */
    size_t columns_at, names_at;         /* payloads of the input columns and class names, or 0 */
    uint32_t n_columns, n_names;
} mlp__arch;

/* Checks the class-names payload p[0..size): its count and every name. */
static int mlp__parse_names(const unsigned char *p, uint32_t size, uint32_t r, uint32_t *n_names)
{
    size_t off = 4;
    uint32_t k, n;
    if (size < 4) return mlp__fail(MLP_EFORMAT, "record %u: class names record of %u bytes", r, size);
    n = mlp__get_u32(p);
    if (n < 1 || n > MLP_MAX_WIDTH) return mlp__fail(MLP_EFORMAT, "record %u: %u class names", r, n);
    for (k = 0; k < n; k++) {
        uint32_t len;
        if (size - off < 4) return mlp__fail(MLP_EFORMAT, "record %u: class name %u is cut off", r, k);
        len = mlp__get_u32(p + off);
        if (len > size - off - 4) return mlp__fail(MLP_EFORMAT, "record %u: class name %u is cut off", r, k);
        if (!mlp__name_ok((const char *)p + off + 4, len))
            return mlp__fail(MLP_EFORMAT, "record %u: class name %u is empty, longer than %d bytes or has a control character", r, k, MLP_MAX_NAME);
        off += 4 + (size_t)len;
    }
    if (off != size) return mlp__fail(MLP_EFORMAT, "record %u: %llu bytes after the last class name", r, (unsigned long long)(size - off));
    *n_names = n;
    return MLP_OK;
}

/* Walks the layer records of a checksummed model, checking every field
   against the bytes that remain before anything is allocated. */
static int mlp__parse_records(const unsigned char *p, size_t end, uint32_t n_records, mlp__arch *arch)
{
    size_t off = MLP__MODEL_HEADER;
    uint32_t r;
    int prev_act = 1; /* a model must start with a dense layer */
    int prev_dropout = 0, prev_dense = 0;
    uint32_t input_width = 0, input_record = 0; /* of an input dropout record */
    arch->n_sizes = 0;
    arch->input_rate = arch->hidden_rate = 0.0f;
    arch->hidden_dropouts = arch->hidden_acts = 0;
    arch->columns_at = arch->names_at = 0;
    arch->n_columns = arch->n_names = 0;
    for (r = 0; r < n_records; r++) {
        uint32_t kind, size;
        if (end - off < 8) return mlp__fail(MLP_EFORMAT, "layer record %u: truncated", r);
        kind = mlp__get_u32(p + off);
        size = mlp__get_u32(p + off + 4);
        off += 8;
        if (size > end - off) return mlp__fail(MLP_EFORMAT, "layer record %u: %u bytes claimed, %llu left", r, size, (unsigned long long)(end - off));
        if (kind == MLP__REC_DENSE) {
            uint32_t n_in, n_out;
            int d;
            if (size < 8) return mlp__fail(MLP_EFORMAT, "layer record %u: dense record of %u bytes", r, size);
            n_in = mlp__get_u32(p + off);
            n_out = mlp__get_u32(p + off + 4);
            if (n_in < 1 || n_in > MLP_MAX_WIDTH || n_out < 1 || n_out > MLP_MAX_WIDTH)
                return mlp__fail(MLP_EFORMAT, "layer record %u: dense size %u x %u outside 1..%d", r, n_in, n_out, MLP_MAX_WIDTH);
            if ((uint64_t)size != 8 + 4 * ((uint64_t)n_in * n_out + n_out))
                return mlp__fail(MLP_EFORMAT, "layer record %u: dense %u x %u needs %llu bytes, record has %u", r, n_in, n_out,
                                 (unsigned long long)(8 + 4 * ((uint64_t)n_in * n_out + n_out)), size);
            if (arch->n_sizes == 0) arch->sizes[arch->n_sizes++] = (int)n_in;
            else if ((uint32_t)arch->sizes[arch->n_sizes - 1] != n_in)
                return mlp__fail(MLP_EFORMAT, "layer record %u: dense input %u does not match the previous width %d", r, n_in, arch->sizes[arch->n_sizes - 1]);
            if (arch->n_sizes > MLP_MAX_LAYERS) return mlp__fail(MLP_EFORMAT, "more than %d dense layers", MLP_MAX_LAYERS);
            d = arch->n_sizes - 1;
            arch->sizes[arch->n_sizes++] = (int)n_out;
            arch->acts[d] = MLP_ACT_IDENTITY;
            arch->weights_at[d] = off + 8;
            arch->batchnorm[d] = 0;
            if (prev_act && arch->n_sizes > 2) arch->hidden_acts++; /* an activation feeding this layer */
            prev_act = 0;
            prev_dropout = 0;
            prev_dense = 1;
            off += size;
            continue;
        } else if (kind == MLP__REC_ACT) {
            uint32_t fn, width;
            if (size != 8) return mlp__fail(MLP_EFORMAT, "layer record %u: activation record of %u bytes (expected 8)", r, size);
            fn = mlp__get_u32(p + off);
            width = mlp__get_u32(p + off + 4);
            if (fn < 1 || fn > 3) return mlp__fail(MLP_EFORMAT, "layer record %u: unknown activation function %u", r, fn);
            if (prev_act) return mlp__fail(MLP_EFORMAT, "layer record %u: an activation must follow a dense layer", r);
            if (width != (uint32_t)arch->sizes[arch->n_sizes - 1])
                return mlp__fail(MLP_EFORMAT, "layer record %u: activation width %u does not match %d", r, width, arch->sizes[arch->n_sizes - 1]);
            arch->acts[arch->n_sizes - 2] = fn == 1 ? MLP_ACT_RELU : fn == 2 ? MLP_ACT_SIGMOID : MLP_ACT_TANH;
            prev_act = 1;
        } else if (kind == MLP__REC_BATCHNORM) {
            uint32_t width;
            float eps, momentum;
            if (size < 12) return mlp__fail(MLP_EFORMAT, "layer record %u: batchnorm record of %u bytes", r, size);
            width = mlp__get_u32(p + off);
            eps = mlp__get_f32(p + off + 4);
            momentum = mlp__get_f32(p + off + 8);
            if (!prev_dense || width != (uint32_t)arch->sizes[arch->n_sizes - 1])
                return mlp__fail(MLP_EFORMAT, "layer record %u: batchnorm must follow a dense layer of the same width", r);
            if ((uint64_t)size != 12 + 16 * (uint64_t)width)
                return mlp__fail(MLP_EFORMAT, "layer record %u: batchnorm of width %u needs %llu bytes, record has %u", r, width,
                                 (unsigned long long)(12 + 16 * (uint64_t)width), size);
            if (!(eps > 0.0f && eps < 1.0f) || !(momentum > 0.0f && momentum <= 1.0f))
                return mlp__fail(MLP_EFORMAT, "layer record %u: batchnorm eps %g or momentum %g out of range", r, eps, momentum);
            arch->batchnorm[arch->n_sizes - 2] = 1;
            arch->batchnorm_at[arch->n_sizes - 2] = off;
        } else if (kind == MLP__REC_DROPOUT) {
            float rate;
            uint32_t width;
            if (size != 8) return mlp__fail(MLP_EFORMAT, "layer record %u: dropout record of %u bytes (expected 8)", r, size);
            rate = mlp__get_f32(p + off);
            width = mlp__get_u32(p + off + 4);
            if (!(rate > 0.0f && rate < 1.0f)) return mlp__fail(MLP_EFORMAT, "layer record %u: dropout rate %g outside (0, 1)", r, rate);
            if (prev_dropout) return mlp__fail(MLP_EFORMAT, "layer record %u: two dropout layers in a row", r);
            if (arch->n_sizes == 0) { arch->input_rate = rate; input_width = width; input_record = r; }
            else if (!prev_act || width != (uint32_t)arch->sizes[arch->n_sizes - 1])
                return mlp__fail(MLP_EFORMAT, "layer record %u: dropout must follow the input or an activation of the same width", r);
            else if (arch->hidden_dropouts && rate != arch->hidden_rate)
                return mlp__fail(MLP_EFORMAT, "layer record %u: hidden dropout rates differ (%g, %g)", r, arch->hidden_rate, rate);
            else { arch->hidden_rate = rate; arch->hidden_dropouts++; }
            prev_dropout = 1;
        } else if (kind == MLP__REC_COLUMNS) {
            uint32_t j, n;
            if (r != 0) return mlp__fail(MLP_EFORMAT, "record %u: input columns must be the first record", r);
            if (size < 4) return mlp__fail(MLP_EFORMAT, "record %u: input columns record of %u bytes", r, size);
            n = mlp__get_u32(p + off);
            if ((uint64_t)size != 4 + 8 * (uint64_t)n)
                return mlp__fail(MLP_EFORMAT, "record %u: %u input columns need %llu bytes, record has %u", r, n,
                                 (unsigned long long)(4 + 8 * (uint64_t)n), size);
            for (j = 0; j < n; j++) {
                float scale = mlp__get_f32(p + off + 4 + 4 * (size_t)j), shift = mlp__get_f32(p + off + 4 + 4 * ((size_t)n + j));
                if (!isfinite(scale) || !isfinite(shift) || scale == 0.0f)
                    return mlp__fail(MLP_EFORMAT, "record %u: input column %u has scale %g, offset %g", r, j, scale, shift);
            }
            arch->columns_at = off + 4;
            arch->n_columns = n;
        } else if (kind == MLP__REC_NAMES) {
            if (r != n_records - 1) return mlp__fail(MLP_EFORMAT, "record %u: class names must be the last record", r);
            if (mlp__parse_names(p + off, size, r, &arch->n_names) != MLP_OK) return MLP_EFORMAT;
            arch->names_at = off;
        } else {
            return mlp__fail(MLP_EFORMAT, "layer record %u: unknown layer kind %u (written by a newer mlp.h?)", r, kind);
        }
        prev_dense = 0;
        off += size;
    }
    if (arch->n_sizes < 2) return mlp__fail(MLP_EFORMAT, "no dense layer");
    if (arch->hidden_dropouts && arch->hidden_dropouts != arch->hidden_acts)
        return mlp__fail(MLP_EFORMAT, "dropout after %d of %d hidden activations (all or none)", arch->hidden_dropouts, arch->hidden_acts);
    if (prev_dropout) return mlp__fail(MLP_EFORMAT, "a dropout layer cannot come last");
    if (off != end) return mlp__fail(MLP_EFORMAT, "%llu unexpected bytes after the last layer", (unsigned long long)(end - off));
    if (arch->input_rate > 0.0f && input_width != (uint32_t)arch->sizes[0])
        return mlp__fail(MLP_EFORMAT, "layer record %u: input dropout width %u does not match the input width %d", input_record,
                         input_width, arch->sizes[0]);
    if (arch->columns_at && arch->n_columns != (uint32_t)arch->sizes[0])
        return mlp__fail(MLP_EFORMAT, "%u input columns for an input width of %d", arch->n_columns, arch->sizes[0]);
    if (arch->names_at && arch->n_names != (uint32_t)arch->sizes[arch->n_sizes - 1])
        return mlp__fail(MLP_EFORMAT, "%u class names for an output width of %d", arch->n_names, arch->sizes[arch->n_sizes - 1]);
    return MLP_OK;
}

/* the input columns record, checked by mlp__parse_records, into net */
static int mlp__load_columns(mlp_net *net, const unsigned char *p, const mlp__arch *arch)
{
    size_t j, n = arch->n_columns;
    if (!arch->columns_at) return MLP_OK;
    if (!(net->col_scale = (float *)mlp__alloc(n, 2 * sizeof(float), 1))) return MLP_ENOMEM;
    net->col_offset = net->col_scale + n;
    for (j = 0; j < 2 * n; j++) net->col_scale[j] = mlp__get_f32(p + arch->columns_at + 4 * j);
    return MLP_OK;
}

/* the class names record, checked by mlp__parse_names but for repeats */
static int mlp__load_names(mlp_net *net, const unsigned char *p, const mlp__arch *arch)
{
    const char **names;
    size_t *lens, off = arch->names_at + 4;
    uint32_t k, n = arch->n_names;
    int twice;
    if (!arch->names_at) return MLP_OK;
    names = (const char **)mlp__alloc(n, sizeof(char *), 1);
    lens = (size_t *)mlp__alloc(n, sizeof(size_t), 1);
    for (k = 0; names && lens && k < n; k++) {
        lens[k] = mlp__get_u32(p + off);
        names[k] = (const char *)p + off + 4;
        off += 4 + lens[k];
    }
    net->class_names = names && lens ? mlp__names_block(names, lens, (int)n) : NULL;
    MLP_FREE(names);
    MLP_FREE(lens);
    if (!net->class_names) return MLP_ENOMEM;
    if ((twice = mlp__repeated_name((const char *const *)net->class_names, (int)n)) == -1) return MLP_OK;
    return twice == -2 ? MLP_ENOMEM : mlp__fail(MLP_EFORMAT, "class name \"%s\" is there twice", net->class_names[twice]);
}

MLPDEF mlp_net *mlp_load_memory(const void *buf, size_t size)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint32_t version, flags, loss, img_w, img_h, n_records, stored, actual;
    float scale, offset;
    size_t end, i;
    mlp__arch arch;
    mlp_net *net;
    int l, d;
    if (!buf) { mlp__fail(MLP_EARG, "mlp_load_memory: NULL buffer"); return NULL; }
    if (size < 12 || memcmp(p, mlp__model_magic, 8) != 0) {
        mlp__fail(MLP_EFORMAT, size < 8 ? "too short to be a model file (%llu bytes)" : "not an mlp.h model file (bad magic)", (unsigned long long)size);
        return NULL;
    }
    version = mlp__get_u32(p + 8);
    if (version != MLP__MODEL_VERSION) {
        mlp__fail(MLP_EFORMAT, "model format version %u; this mlp.h reads version %d", version, MLP__MODEL_VERSION);
        return NULL;
    }
    if (size < MLP__MODEL_HEADER + 4) { mlp__fail(MLP_EFORMAT, "truncated header (%llu bytes)", (unsigned long long)size); return NULL; }
    end = size - 4;
    stored = mlp__get_u32(p + end);
    actual = mlp_crc32(p, end);
    if (stored != actual) {
        mlp__fail(MLP_EFORMAT, "checksum mismatch (stored %08x, computed %08x): the file is damaged or truncated", stored, actual);
        return NULL;
    }
    flags = mlp__get_u32(p + 12); loss = mlp__get_u32(p + 16);
    img_w = mlp__get_u32(p + 20); img_h = mlp__get_u32(p + 24);
    scale = mlp__get_f32(p + 28); offset = mlp__get_f32(p + 32);
    n_records = mlp__get_u32(p + 36);
    if (flags != 0) { mlp__fail(MLP_EFORMAT, "unknown flags 0x%x", flags); return NULL; }
    if (loss > 1) { mlp__fail(MLP_EFORMAT, "unknown loss %u", loss); return NULL; }
    if (!isfinite(scale) || !isfinite(offset) || scale == 0.0f) { mlp__fail(MLP_EFORMAT, "bad input normalisation (scale %g, offset %g)", scale, offset); return NULL; }
    if (n_records < 1 || n_records > MLP__MAX_RECORDS) { mlp__fail(MLP_EFORMAT, "%u layer records (need 1..%d)", n_records, MLP__MAX_RECORDS); return NULL; }
    if (img_w > MLP_MAX_WIDTH || img_h > MLP_MAX_WIDTH || (img_w == 0) != (img_h == 0)) { mlp__fail(MLP_EFORMAT, "bad image size %u x %u", img_w, img_h); return NULL; }
    if (mlp__parse_records(p, end, n_records, &arch) != MLP_OK) return NULL;
    if (img_w && (uint64_t)img_w * img_h != (uint64_t)arch.sizes[0]) {
        mlp__fail(MLP_EFORMAT, "image size %u x %u does not match the input width %d", img_w, img_h, arch.sizes[0]);
        return NULL;
    }
    if (loss == 0 && arch.sizes[arch.n_sizes - 1] < 2) { mlp__fail(MLP_EFORMAT, "cross-entropy model with one output"); return NULL; }
    net = mlp_create(arch.n_sizes, arch.sizes, arch.acts, loss == 0 ? MLP_LOSS_CE : MLP_LOSS_MSE, 0);
    if (!net) return NULL;
    net->image_w = (int)img_w; net->image_h = (int)img_h;
    net->input_scale = scale; net->input_offset = offset;
    for (d = 0; d + 1 < arch.n_sizes && !arch.batchnorm[d]; d++) {}
    if (d + 1 < arch.n_sizes && mlp__insert_batchnorm(net, arch.batchnorm) != MLP_OK) {
        mlp_free(net);
        return NULL;
    }
    if ((arch.input_rate > 0.0f || arch.hidden_rate > 0.0f) && mlp_add_dropout(net, arch.input_rate, arch.hidden_rate) != MLP_OK) {
        mlp_free(net);
        return NULL;
    }
    for (l = 0, d = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        size_t nw = (size_t)L->n_in * L->n_out, at;
        if (L->kind == MLP_LAYER_BATCHNORM) {
            float *blocks[4];
            int k;
            at = arch.batchnorm_at[d - 1];
            L->eps = mlp__get_f32(p + at + 4);
            L->momentum = mlp__get_f32(p + at + 8);
            blocks[0] = L->W; blocks[1] = L->b; blocks[2] = L->run_mean; blocks[3] = L->run_var;
            for (k = 0; k < 4; k++)
                for (i = 0; i < (size_t)L->n_out; i++) blocks[k][i] = mlp__get_f32(p + at + 12 + 4 * ((size_t)k * L->n_out + i));
            for (i = 0; i < (size_t)L->n_out; i++)
                if (!(L->run_var[i] >= 0.0f) || !isfinite(L->run_var[i]) || !isfinite(L->run_mean[i])) {
                    mlp__fail(MLP_EFORMAT, "batchnorm running statistics of unit %llu are not finite (or the variance < 0)", (unsigned long long)i);
                    mlp_free(net);
                    return NULL;
                }
        }
        if (L->kind != MLP_LAYER_DENSE) continue;
        at = arch.weights_at[d++];
        for (i = 0; i < nw; i++) L->W[i] = mlp__get_f32(p + at + 4 * i);
        for (i = 0; i < (size_t)L->n_out; i++) L->b[i] = mlp__get_f32(p + at + 4 * (nw + i));
    }
    for (i = 0; i < net->n_params; i++)
        if (!isfinite(net->params[i])) {
            mlp__fail(MLP_EFORMAT, "parameter %llu is not finite", (unsigned long long)i);
            mlp_free(net);
            return NULL;
        }
    if (mlp__load_columns(net, p, &arch) != MLP_OK || mlp__load_names(net, p, &arch) != MLP_OK) {
        mlp_free(net);
        return NULL;
    }
    return net;
}


/* -- checkpoints: a model plus everything needed to continue training it
   bit for bit. Layout (little-endian):
        0    8  magic 89 4D 4C 50 43 4B 0D 0A  ("\x89MLPCK\r\n")
        8    4  u32 version = 2 (version 1, which 0.5 and before wrote, ends
                                  after the optimizer blocks: no loop state)
       12    4  u32 epochs completed     16  4  u32 batches completed in the next
       20    8  u64 shuffling seed       28  4  u32 batch size
       32    4  f32 lr   36 f32 momentum   40 f32 weight decay   44 f32 lr decay
       48    4  u32 lr step              52  4  u32 optimizer state blocks K:
                                              0, 1 (velocity / Adam's m), 2 (+ Adam's s)
       56    8  u64 model bytes M
       64    4  u32 optimizer  68 f32 beta1  72 f32 beta2  76 f32 eps
       80    4  f32 clip norm  84 f32 max norm  88 u32 schedule  92 u32 warm-up epochs
       96    4  u32 total epochs  100 f32 lr scale  104 u64 optimizer steps taken
      112    M  a model file (as above)
       ...   K blocks of 4 * n_params f32 (velocity, then second moment)
   then the loop's state (mlp_train_state): the best weights, B bytes of
   a model file (B may be 0), then 56 bytes from offset S = end - 60:
        S    8  f64 the epoch so far: mean loss    S+8  u32 samples  S+12 u32 correct
       S+16  8  f64 best watched loss   S+24 u32 best epoch   S+28 u32 bad epochs
       S+32  8  f64 the best epoch's training loss  S+40 u32 samples  S+44 u32 correct
       S+48  8  u64 B
     end-4   4  u32 CRC-32 of everything before it                            */

#define MLP__CKPT_HEADER 112
#define MLP__CKPT_STATE 56
static const unsigned char mlp__ckpt_magic[8] = {0x89, 'M', 'L', 'P', 'C', 'K', 0x0D, 0x0A};

static void mlp__put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    mlp__put_u32(p, (uint32_t)u);
    mlp__put_u32(p + 4, (uint32_t)(u >> 32));
}

static double mlp__get_f64(const unsigned char *p)
{
    uint64_t u = (uint64_t)mlp__get_u32(p) | ((uint64_t)mlp__get_u32(p + 4) << 32);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void mlp__put_eval(unsigned char *p, const mlp_eval *e)
{
    mlp__put_f64(p, e->loss);
    mlp__put_u32(p + 8, (uint32_t)e->n);
    mlp__put_u32(p + 12, (uint32_t)e->correct);
}

/* Statistics read back, or -1 when they cannot be (a count out of range,
   a loss that no run gives). */
static int mlp__get_eval(const unsigned char *p, mlp_eval *e)
{
    uint32_t n = mlp__get_u32(p + 8), correct = mlp__get_u32(p + 12);
    e->loss = mlp__get_f64(p);
    if (n > 0x7fffffffu || correct > n || !(e->loss >= 0.0 && e->loss <= 1e300)) return -1;
    e->n = (int)n; e->correct = (int)correct;
    e->accuracy = n ? (double)correct / n : 0.0;
    return 0;
}

MLPDEF mlp_eval mlp_eval_merge(const mlp_eval *a, const mlp_eval *b)
{
    mlp_eval m = {0.0, 0.0, 0, 0};
    if (!a || !b) return m;
    m.n = a->n + b->n;
    m.correct = a->correct + b->correct;
    if (m.n > 0) {
        m.loss = (a->loss * a->n + b->loss * b->n) / m.n;
        m.accuracy = (double)m.correct / m.n;
    }
    return m;
}

static int mlp__state_ok(const mlp_train_state *st, const mlp_net *net)
{
    return st->epoch >= 0 && st->batch >= 0 && st->so_far.n >= 0 && st->so_far.correct >= 0
        && st->so_far.correct <= st->so_far.n && st->best_epoch >= 0 && st->best_epoch <= st->epoch
        && st->bad_epochs >= 0 && st->bad_epochs <= st->epoch && st->best_train.n >= 0
        && st->best_train.correct >= 0 && st->best_train.correct <= st->best_train.n
        && (!st->best || st->best->n_params == net->n_params);
}

/* The checkpoint's size in bytes (0 on bad arguments); written to buf when
   cap suffices. st may be NULL (no loop state). */
static size_t mlp__save_checkpoint(const mlp_net *net, const mlp_train_config *config, const mlp_train_state *st,
                                   void *buf, size_t cap)
{
    size_t model = net ? mlp__save_model(net, NULL, 0) : 0, best, vel, need, i, s;
    unsigned char *p = (unsigned char *)buf;
    uint32_t blocks;
    mlp_train_config c;
    mlp_train_state none;
    const mlp_train_config *cfg;
    if (!st) { memset(&none, 0, sizeof none); st = &none; }
    if (!net || !config || !model || !mlp__state_ok(st, net)) { mlp__fail(MLP_EARG, "mlp_checkpoint_save: bad arguments"); return 0; }
    best = st->best ? mlp__save_model(st->best, NULL, 0) : 0;
    c = mlp__with_defaults(config); /* a resumed run reads back what trained */
    cfg = &c;
    blocks = net->second ? 2u : net->velocity ? 1u : 0u;
    vel = 4 * net->n_params * blocks;
    s = MLP__CKPT_HEADER + model + vel;
    need = s + MLP__CKPT_STATE + best + 4;
    if (!buf || cap < need) return need;
    memcpy(p, mlp__ckpt_magic, 8);
    mlp__put_u32(p + 8, 2);
    mlp__put_u32(p + 12, (uint32_t)st->epoch);
    mlp__put_u32(p + 16, (uint32_t)st->batch);
    mlp__put_u32(p + 20, (uint32_t)cfg->seed);
    mlp__put_u32(p + 24, (uint32_t)(cfg->seed >> 32));
    mlp__put_u32(p + 28, (uint32_t)cfg->batch);
    mlp__put_f32(p + 32, cfg->lr);
    mlp__put_f32(p + 36, cfg->momentum);
    mlp__put_f32(p + 40, cfg->weight_decay);
    mlp__put_f32(p + 44, cfg->lr_decay);
    mlp__put_u32(p + 48, (uint32_t)cfg->lr_step);
    mlp__put_u32(p + 52, blocks);
    mlp__put_u32(p + 56, (uint32_t)model);
    mlp__put_u32(p + 60, (uint32_t)((uint64_t)model >> 32));
    mlp__put_u32(p + 64, (uint32_t)cfg->optimizer);
    mlp__put_f32(p + 68, cfg->beta1);
    mlp__put_f32(p + 72, cfg->beta2);
    mlp__put_f32(p + 76, cfg->eps);
    mlp__put_f32(p + 80, cfg->clip_norm);
    mlp__put_f32(p + 84, cfg->max_norm);
    mlp__put_u32(p + 88, (uint32_t)cfg->schedule);
    mlp__put_u32(p + 92, (uint32_t)(cfg->warmup_epochs > 0 ? cfg->warmup_epochs : 0));
    mlp__put_u32(p + 96, (uint32_t)(cfg->total_epochs > 0 ? cfg->total_epochs : 0));
    mlp__put_f32(p + 100, cfg->lr_scale);
    mlp__put_u32(p + 104, (uint32_t)net->step);
    mlp__put_u32(p + 108, (uint32_t)(net->step >> 32));
    mlp__save_model(net, p + MLP__CKPT_HEADER, model);
    for (i = 0; i < net->n_params * blocks; i++)
        mlp__put_f32(p + MLP__CKPT_HEADER + model + 4 * i, i < net->n_params ? net->velocity[i] : net->second[i - net->n_params]);
    if (best) mlp__save_model(st->best, p + s, best);
    s += best;
    mlp__put_eval(p + s, &st->so_far);
    mlp__put_f64(p + s + 16, st->best_loss);
    mlp__put_u32(p + s + 24, (uint32_t)st->best_epoch);
    mlp__put_u32(p + s + 28, (uint32_t)st->bad_epochs);
    mlp__put_eval(p + s + 32, &st->best_train);
    mlp__put_u32(p + s + 48, (uint32_t)best);
    mlp__put_u32(p + s + 52, (uint32_t)((uint64_t)best >> 32));
    mlp__put_u32(p + need - 4, mlp_crc32(p, need - 4));
    return need;
}

MLPDEF int mlp_checkpoint_save_state_memory(const mlp_net *net, const mlp_train_config *cfg, const mlp_train_state *st,
                                            void *buf, size_t cap, size_t *size)
{
    size_t need;
    int rc;
    if (!size) return mlp__fail(MLP_EARG, "mlp_checkpoint_save_memory: NULL size");
    *size = 0; /* on every failure below */
    if (!(need = mlp__save_checkpoint(net, cfg, st, NULL, 0))) return MLP_EARG;
    if ((rc = mlp__sized_write("mlp_checkpoint_save_memory", need, buf, cap, size)) != MLP_OK) return rc;
    if (buf) mlp__save_checkpoint(net, cfg, st, buf, cap);
    return MLP_OK;
}

MLPDEF int mlp_checkpoint_save_memory(const mlp_net *net, const mlp_train_config *cfg, int epoch, int batch,
                                      void *buf, size_t cap, size_t *size)
{
    mlp_train_state st;
    memset(&st, 0, sizeof st);
    st.epoch = epoch; st.batch = batch;
    return mlp_checkpoint_save_state_memory(net, cfg, &st, buf, cap, size);
}

/* The training configuration of the checkpoint header p into cfg; -1 when
   a field is out of range. */
static int mlp__load_ckpt_config(const unsigned char *p, mlp_train_config *cfg)
{
    if (mlp__get_u32(p + 92) > 1000000 || mlp__get_u32(p + 96) > 1000000)
        return mlp__fail(MLP_EFORMAT, "checkpoint schedule epochs out of range");
    cfg->optimizer = (mlp_optimizer)mlp__get_u32(p + 64);
    cfg->beta1 = mlp__get_f32(p + 68); cfg->beta2 = mlp__get_f32(p + 72); cfg->eps = mlp__get_f32(p + 76);
    cfg->clip_norm = mlp__get_f32(p + 80); cfg->max_norm = mlp__get_f32(p + 84);
    cfg->schedule = (mlp_schedule)mlp__get_u32(p + 88);
    cfg->warmup_epochs = (int)mlp__get_u32(p + 92); cfg->total_epochs = (int)mlp__get_u32(p + 96);
    cfg->lr_scale = mlp__get_f32(p + 100);
    cfg->seed = (uint64_t)mlp__get_u32(p + 20) | ((uint64_t)mlp__get_u32(p + 24) << 32);
    cfg->batch = (int)mlp__get_u32(p + 28); cfg->lr_step = (int)mlp__get_u32(p + 48);
    cfg->lr = mlp__get_f32(p + 32); cfg->momentum = mlp__get_f32(p + 36);
    cfg->weight_decay = mlp__get_f32(p + 40); cfg->lr_decay = mlp__get_f32(p + 44);
    return mlp__check_config(cfg);
}

/* Version 2's loop state into st: the best weights (best bytes at p, checked
   against net's layers), then the fixed part. */
static int mlp__load_ckpt_state(const unsigned char *p, size_t best, const mlp_net *net, mlp_train_state *st)
{
    const unsigned char *f = p + best;
    if (mlp__get_eval(f, &st->so_far) || mlp__get_eval(f + 32, &st->best_train))
        return mlp__fail(MLP_EFORMAT, "checkpoint training statistics out of range");
    st->best_loss = mlp__get_f64(f + 16);
    if (isnan(st->best_loss) || mlp__get_u32(f + 24) > (uint32_t)st->epoch || mlp__get_u32(f + 28) > (uint32_t)st->epoch)
        return mlp__fail(MLP_EFORMAT, "checkpoint early-stopping state out of range (best epoch %u, %u bad epochs, after %d)",
                         mlp__get_u32(f + 24), mlp__get_u32(f + 28), st->epoch);
    st->best_epoch = (int)mlp__get_u32(f + 24);
    st->bad_epochs = (int)mlp__get_u32(f + 28);
    if (!best) return MLP_OK;
    if (!(st->best = mlp_load_memory(p, best))) return MLP_EFORMAT;
    if (st->best->n_params != net->n_params || st->best->n_layers != net->n_layers) {
        mlp_free(st->best);
        st->best = NULL;
        return mlp__fail(MLP_EFORMAT, "checkpoint best weights have other layers than its network");
    }
    return MLP_OK;
}

MLPDEF mlp_net *mlp_checkpoint_load_state_memory(const void *buf, size_t size, mlp_train_config *cfg, mlp_train_state *st)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t model, best = 0;
    uint32_t has_vel, e, b, bs, step, version;
    mlp_net *net;
    size_t i, vel, s, tail;
    if (!buf || !cfg || !st) { mlp__fail(MLP_EARG, "mlp_checkpoint_load_memory: NULL argument"); return NULL; }
    memset(st, 0, sizeof *st);
    if (size < MLP__CKPT_HEADER + 4 || memcmp(p, mlp__ckpt_magic, 8) != 0) { mlp__fail(MLP_EFORMAT, "not an mlp.h checkpoint"); return NULL; }
    version = mlp__get_u32(p + 8);
    if (version != 1 && version != 2) { mlp__fail(MLP_EFORMAT, "checkpoint version %u; this mlp.h reads versions 1 and 2", version); return NULL; }
    if (mlp__get_u32(p + size - 4) != mlp_crc32(p, size - 4)) { mlp__fail(MLP_EFORMAT, "checkpoint checksum mismatch: the file is damaged or truncated"); return NULL; }
    e = mlp__get_u32(p + 12); b = mlp__get_u32(p + 16); bs = mlp__get_u32(p + 28); step = mlp__get_u32(p + 48);
    has_vel = mlp__get_u32(p + 52);
    model = (uint64_t)mlp__get_u32(p + 56) | ((uint64_t)mlp__get_u32(p + 60) << 32);
    if (e > 1000000 || b > (1u << 30) || bs < 1 || bs > (1u << 24) || step < 1 || step > 1000000 || has_vel > 2) {
        mlp__fail(MLP_EFORMAT, "checkpoint header out of range (epoch %u, batch %u, batch size %u, lr step %u)", e, b, bs, step);
        return NULL;
    }
    tail = version == 2 ? MLP__CKPT_STATE : 0;
    if (size < MLP__CKPT_HEADER + tail + 4) { mlp__fail(MLP_EFORMAT, "checkpoint ends before its training state"); return NULL; }
    if (tail) best = (uint64_t)mlp__get_u32(p + size - 12) | ((uint64_t)mlp__get_u32(p + size - 8) << 32);
    if (model > size - MLP__CKPT_HEADER - 4) { mlp__fail(MLP_EFORMAT, "checkpoint model of %llu bytes, %llu present", (unsigned long long)model, (unsigned long long)(size - MLP__CKPT_HEADER - 4)); return NULL; }
    if (!(net = mlp_load_memory(p + MLP__CKPT_HEADER, (size_t)model))) return NULL;
    vel = 4 * net->n_params * has_vel;
    s = MLP__CKPT_HEADER + (size_t)model + vel;
    if (best > size || size != s + best + tail + 4) {
        mlp__fail(MLP_EFORMAT, "checkpoint size %llu does not match its contents (%llu)", (unsigned long long)size,
                  (unsigned long long)(s + best + tail + 4));
        mlp_free(net);
        return NULL;
    }
    st->epoch = (int)e; st->batch = (int)b;
    if ((tail && mlp__load_ckpt_state(p + s, (size_t)best, net, st) != MLP_OK)
        || mlp__ensure_state(net, has_vel == 2) != MLP_OK || mlp__load_ckpt_config(p, cfg) != MLP_OK) {
        mlp_free(st->best);
        memset(st, 0, sizeof *st);
        mlp_free(net);
        return NULL;
    }
    for (i = 0; i < net->n_params * has_vel; i++) {
        float f = mlp__get_f32(p + MLP__CKPT_HEADER + (size_t)model + 4 * i);
        if (i < net->n_params) net->velocity[i] = f; else net->second[i - net->n_params] = f;
    }
    if (!has_vel) { mlp__free64(net->velocity); net->velocity = NULL; }
    net->step = (uint64_t)mlp__get_u32(p + 104) | ((uint64_t)mlp__get_u32(p + 108) << 32);
    return net;
}

MLPDEF mlp_net *mlp_checkpoint_load_memory(const void *buf, size_t size, mlp_train_config *cfg, int *epoch, int *batch)
{
    mlp_train_state st;
    mlp_net *net;
    if (!epoch || !batch) { mlp__fail(MLP_EARG, "mlp_checkpoint_load_memory: NULL argument"); return NULL; }
    *epoch = *batch = 0;
    if (!(net = mlp_checkpoint_load_state_memory(buf, size, cfg, &st))) return NULL;
    mlp_free(st.best);
    *epoch = st.epoch; *batch = st.batch;
    return net;
}

#ifndef MLP_NO_STDIO
#if defined(_WIN32)
#include <io.h>       /* _commit, _fileno */
#include <windows.h>  /* MoveFileExA */
#elif defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

/* Closes f, the file at path, with its contents on the disk, so that it
   can replace an old one. Returns 0, or -1 when a write or flush failed.
   (Strict C99 declares no fileno: POSIX syncs the file through a new
   descriptor, which fsync covers all the same.) */
static int mlp__close_synced(FILE *f, const char *path)
{
    int bad = fflush(f) != 0;
#if defined(_WIN32)
    bad |= _commit(_fileno(f)) != 0;
#endif
    bad |= fclose(f) != 0;
#if !defined(_WIN32) && (defined(__unix__) || defined(__APPLE__))
    if (!bad) {
        int fd = open(path, O_RDONLY);
        bad = fd < 0 || fsync(fd) != 0;
        if (fd >= 0) close(fd);
    }
#else
    (void)path;
#endif
    return bad ? -1 : 0;
}

/* Puts tmp in path's place in one step: rename() on POSIX; on Windows,
   where rename() refuses an existing target, MoveFileEx with
   REPLACE_EXISTING (and WRITE_THROUGH, so it returns once on disk). */
static int mlp__replace_file(const char *tmp, const char *path)
{
#if defined(_WIN32)
    return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : -1;
#else
    return rename(tmp, path);
#endif
}

/* Writes PATH.tmp, flushes it to disk, then renames it over PATH: a crash or
   a full disk at any moment leaves either the old file or the new one. */
static int mlp__write_atomic(const char *path, const void *buf, size_t size)
{
    size_t n = strlen(path);
    char *tmp = (char *)mlp__alloc(n + 5, 1, 1);
    int rc = MLP_OK;
    FILE *f;
    if (!tmp) return MLP_ENOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    if (!(f = fopen(tmp, "wb"))) rc = mlp__fail(MLP_EIO, "%s: cannot create %s", path, tmp);
    else {
        int bad = fwrite(buf, 1, size, f) != size;
        bad |= mlp__close_synced(f, tmp) != 0;
        if (bad) rc = mlp__fail(MLP_EIO, "%s: write failed (disk full?); the previous file is untouched", path);
        else if (mlp__replace_file(tmp, path) != 0) rc = mlp__fail(MLP_EIO, "%s: cannot rename %s over it", path, tmp);
        if (rc != MLP_OK) remove(tmp);
    }
    MLP_FREE(tmp);
    return rc;
}

MLPDEF int mlp_save(const mlp_net *net, const char *path)
{
    size_t size;
    void *buf;
    int rc;
    if (!net || !path) return mlp__fail(MLP_EARG, "mlp_save: NULL argument");
    size = mlp__save_model(net, NULL, 0);
    if (!(buf = mlp__alloc(size, 1, 1))) return MLP_ENOMEM;
    mlp__save_model(net, buf, size);
    rc = mlp__write_atomic(path, buf, size);
    MLP_FREE(buf);
    return rc;
}

MLPDEF int mlp_checkpoint_save_state(const mlp_net *net, const mlp_train_config *cfg, const mlp_train_state *st,
                                     const char *path)
{
    size_t size;
    void *buf;
    int rc;
    if (!net || !cfg || !st || !path) return mlp__fail(MLP_EARG, "mlp_checkpoint_save: NULL argument");
    if (!(size = mlp__save_checkpoint(net, cfg, st, NULL, 0))) return MLP_EARG;
    if (!(buf = mlp__alloc(size, 1, 1))) return MLP_ENOMEM;
    mlp__save_checkpoint(net, cfg, st, buf, size);
    rc = mlp__write_atomic(path, buf, size);
    MLP_FREE(buf);
    return rc;
}

MLPDEF int mlp_checkpoint_save(const mlp_net *net, const mlp_train_config *cfg, int epoch, int batch, const char *path)
{
    mlp_train_state st;
    memset(&st, 0, sizeof st);
    st.epoch = epoch; st.batch = batch;
    return mlp_checkpoint_save_state(net, cfg, &st, path);
}

/* Prefixes the current message with path. */
static void mlp__name_file(const char *path)
{
    char msg[sizeof mlp__error_message];
    memcpy(msg, mlp__error_message, sizeof msg);
    mlp__fail(MLP_EFORMAT, "%s: %s", path, msg);
}

MLPDEF mlp_net *mlp_load(const char *path)
{
    size_t size;
    unsigned char *buf;
    mlp_net *net;
    if (!path) { mlp__fail(MLP_EARG, "mlp_load: NULL path"); return NULL; }
    if (mlp__read_file(path, &buf, &size) != MLP_OK) return NULL;
    if (!(net = mlp_load_memory(buf, size))) mlp__name_file(path);
    MLP_FREE(buf);
    return net;
}

MLPDEF mlp_net *mlp_checkpoint_load_state(const char *path, mlp_train_config *cfg, mlp_train_state *st)
{
    size_t size;
    unsigned char *buf;
    mlp_net *net;
    if (!path) { mlp__fail(MLP_EARG, "mlp_checkpoint_load: NULL path"); return NULL; }
    if (mlp__read_file(path, &buf, &size) != MLP_OK) return NULL;
    if (!(net = mlp_checkpoint_load_state_memory(buf, size, cfg, st))) mlp__name_file(path);
    MLP_FREE(buf);
    return net;
}

MLPDEF mlp_net *mlp_checkpoint_load(const char *path, mlp_train_config *cfg, int *epoch, int *batch)
{
    mlp_train_state st;
    mlp_net *net;
    if (!epoch || !batch) { mlp__fail(MLP_EARG, "mlp_checkpoint_load: NULL argument"); return NULL; }
    *epoch = *batch = 0;
    if (!(net = mlp_checkpoint_load_state(path, cfg, &st))) return NULL;
    mlp_free(st.best);
    *epoch = st.epoch; *batch = st.batch;
    return net;
}

#endif /* MLP_NO_STDIO */

/* ---- int8 weights ---------------------------------------------------------- */
/* Dense weights as 8-bit integers, for small devices: each output unit j
   (a column of W, batchnorm folded in) gets its own scale s_j = max |w_ij|
   / 127, and w_ij becomes round(w_ij / s_j) in -127..127. The exported
   header computes y_j = b_j + s_j sum_i x_i q_ij; mlp_quantize_int8 puts
   the same rounded weights into a network, so mlp_evaluate tells what the
   int8 model's accuracy is. */

/* Batchnorm L as y = x s + t per unit: s = gamma / sqrt(var + eps),
   t = beta - mean s (in double, rounded once). */
static void mlp__batchnorm_affine(const mlp_layer *L, double *s, double *t)
{
    int j;
    for (j = 0; j < L->n_out; j++) {
        s[j] = (double)L->W[j] / sqrt((double)L->run_var[j] + (double)L->eps);
        t[j] = (double)L->b[j] - (double)L->run_mean[j] * s[j];
    }
}

/* Dense layer l's weights and biases as inference uses them: a batchnorm
   right after it folded in (s in double, rounded once). w: n_in x n_out. */
static int mlp__folded_dense(const mlp_net *net, int l, float *w, float *b)
{
    const mlp_layer *L = &net->layers[l], *next = l + 1 < net->n_layers ? &net->layers[l + 1] : NULL;
    size_t i, size = (size_t)L->n_in * (size_t)L->n_out;
    int j, fold = next && next->kind == MLP_LAYER_BATCHNORM;
    double *s = NULL, *sh;
    if (fold) {
        if (!(s = (double *)mlp__alloc((size_t)L->n_out, 2 * sizeof(double), 1))) return MLP_ENOMEM;
        sh = s + L->n_out;
        mlp__batchnorm_affine(next, s, sh);
        for (i = 0; i < size; i++) w[i] = (float)((double)L->W[i] * s[i % (size_t)L->n_out]);
        for (j = 0; j < L->n_out; j++) b[j] = (float)((double)L->b[j] * s[j] + sh[j]);
    } else {
        memcpy(w, L->W, size * sizeof(float));
        memcpy(b, L->b, (size_t)L->n_out * sizeof(float));
    }
    MLP_FREE(s);
    return MLP_OK;
}

/* q (n_out x n_in: unit j's weights in a row) and the units' scales */
static void mlp__quantize(const float *w, int n_in, int n_out, signed char *q, float *scale)
{
    int i, j;
    for (j = 0; j < n_out; j++) {
        float top = 0.0f;
        for (i = 0; i < n_in; i++) top = fabsf(w[(size_t)i * n_out + j]) > top ? fabsf(w[(size_t)i * n_out + j]) : top;
        scale[j] = top > 0.0f ? top / 127.0f : 1.0f;
        for (i = 0; i < n_in; i++) {
            float r = floorf(w[(size_t)i * n_out + j] / scale[j] + 0.5f);
            q[(size_t)j * n_in + i] = (signed char)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        }
    }
}

MLPDEF int mlp_quantize_int8(mlp_net *net)
{
    int l, i, j;
    if (!net) return mlp__fail(MLP_EARG, "mlp_quantize_int8: NULL net");
    for (l = 0; l < net->n_layers; l++) {
        mlp_layer *L = &net->layers[l];
        const mlp_layer *next = l + 1 < net->n_layers ? &net->layers[l + 1] : NULL;
        size_t size = (size_t)L->n_in * (size_t)L->n_out;
        float *w, *b, *scale;
        signed char *q;
        double *s = NULL;
        if (L->kind != MLP_LAYER_DENSE) continue;
        w = (float *)mlp__alloc(size + 2 * (size_t)L->n_out, sizeof(float), 1);
        q = (signed char *)mlp__alloc(size, 1, 1);
        if (next && next->kind == MLP_LAYER_BATCHNORM) s = (double *)mlp__alloc((size_t)L->n_out, 2 * sizeof(double), 1);
        if (!w || !q || (next && next->kind == MLP_LAYER_BATCHNORM && !s) || mlp__folded_dense(net, l, w, w + size) != MLP_OK) {
            MLP_FREE(w); MLP_FREE(q); MLP_FREE(s);
            return MLP_ENOMEM;
        }
        b = w + size;
        scale = b + L->n_out;
        mlp__quantize(w, L->n_in, L->n_out, q, scale);
        if (s) mlp__batchnorm_affine(next, s, s + L->n_out);
        for (i = 0; i < L->n_in; i++) /* the rounded weights, the batchnorm unfolded again */
            for (j = 0; j < L->n_out; j++) {
                double v = (double)q[(size_t)j * L->n_in + i] * scale[j];
                L->W[(size_t)i * L->n_out + j] = (float)(s ? v / s[j] : v);
            }
        MLP_FREE(w); MLP_FREE(q); MLP_FREE(s);
    }
    return MLP_OK;
}

#ifndef MLP_NO_STDIO

/* ---- C source export ----------------------------------------------------- */
/* mlp_export_c writes a network as one standalone C header: the weights as
   static const float arrays (printed with 9 significant digits, which read
   back as the same float), batchnorm folded into the product before it,
   and NAME_predict, which applies the input normalisation, every layer and
   the softmax with two stack buffers: no allocation, no mlp.h, and no libc
   but expf/tanhf (none at all with NAME_NO_LIBC defined, which brings a
   built-in exponential instead). */

typedef struct mlp__text { char *p; size_t n, cap; int overflow; } mlp__text;

static void mlp__emit(mlp__text *t, const char *fmt, ...)
{
    va_list ap;
    int k;
    if (t->overflow) return;
    va_start(ap, fmt);
    k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= t->cap - t->n) { t->overflow = 1; return; }
    t->n += (size_t)k;
}

/* a float literal that reads back as v: 9 significant digits, and a
   decimal point where %g printed none ("1f" is not C) */
static void mlp__emit_float(mlp__text *t, float v)
{
    char s[32];
    (void)snprintf(s, sizeof s, "%.9g", (double)v);
    mlp__emit(t, strpbrk(s, ".e") ? "%sf" : "%s.0f", s);
}

/* NAME_ARRAYINDEX (NAME_ARRAY when index < 0) = {v[0..n)} */
static void mlp__emit_floats(mlp__text *t, const char *name, const char *array, int index, const float *v, size_t n)
{
    size_t i;
    if (index < 0) mlp__emit(t, "static const float %s_%s[%lu] = {", name, array, (unsigned long)n);
    else mlp__emit(t, "static const float %s_%s%d[%lu] = {", name, array, index, (unsigned long)n);
    for (i = 0; i < n; i++) {
        mlp__emit(t, i % 8 ? " " : "\n    ");
        mlp__emit_float(t, v[i]);
        mlp__emit(t, ",");
    }
    mlp__emit(t, "\n};\n");
}

/* name as a C string literal: quotes and backslashes escaped, bytes
   outside ASCII as octal (three digits, so a following digit is safe) */
static void mlp__emit_string(mlp__text *t, const char *s)
{
    mlp__emit(t, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') mlp__emit(t, "\\%c", ch);
        else if (ch >= 0x80 || ch < 0x20 || ch == '?') mlp__emit(t, "\\%03o", ch); /* '?': no trigraphs */
        else mlp__emit(t, "%c", ch);
    }
    mlp__emit(t, "\"");
}

/* NAME_class_name(k) (a function, so a program that never asks for a
   name gets no unused-array warning), the input columns as
   NAME_column_scale and NAME_column_offset (those the network has) */
static void mlp__emit_input_and_names(mlp__text *t, const mlp_net *net, const char *name)
{
    int k, n_in = mlp_input_width(net);
    if (net->class_names) {
        mlp__emit(t, "/* the name of class k, NULL if k is out of range */\n"
                     "static inline const char *%s_class_name(int k)\n{\n"
                     "    static const char *const names[%d] = {", name, mlp_output_width(net));
        for (k = 0; k < mlp_output_width(net); k++) {
            mlp__emit(t, "\n        ");
            mlp__emit_string(t, net->class_names[k]);
            mlp__emit(t, ",");
        }
        mlp__emit(t, "\n    };\n    return k >= 0 && k < %d ? names[k] : 0;\n}\n\n", mlp_output_width(net));
    }
    if (!net->col_scale) return;
    mlp__emit_floats(t, name, "column_scale", -1, net->col_scale, (size_t)n_in);
    mlp__emit_floats(t, name, "column_offset", -1, net->col_offset, (size_t)n_in);
}

/* NAME_qN = {q} as signed chars, n values */
static void mlp__emit_int8(mlp__text *t, const char *name, int index, const signed char *q, size_t n)
{
    size_t i;
    mlp__emit(t, "static const signed char %s_q%d[%lu] = {", name, index, (unsigned long)n);
    for (i = 0; i < n; i++) mlp__emit(t, i % 16 ? " %d," : "\n    %d,", q[i]);
    mlp__emit(t, "\n};\n");
}

/* The arrays: dense layer l's weights (batchnorm right after it folded in)
   as NAME_wN / NAME_bN (int8: NAME_qN, one row per unit, NAME_qsN the
   units' scales), a batchnorm anywhere else as NAME_sN / NAME_tN. */
static int mlp__emit_arrays(mlp__text *t, const mlp_net *net, const char *name, int int8)
{
    int l, j;
    mlp__emit_input_and_names(t, net, name);
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        size_t size = (size_t)L->n_in * (size_t)L->n_out;
        int k = mlp__count_kind(net, L->kind, l);
        float *w, *b;
        if (L->kind != MLP_LAYER_DENSE && L->kind != MLP_LAYER_BATCHNORM) continue;
        if (L->kind == MLP_LAYER_BATCHNORM && l > 0 && net->layers[l - 1].kind == MLP_LAYER_DENSE) continue; /* folded */
        if (!(w = (float *)mlp__alloc(size + 2 * (size_t)L->n_out + size / 4 + 1, sizeof(float), 1))) return MLP_ENOMEM;
        b = w + size;
        if (L->kind == MLP_LAYER_BATCHNORM) {
            double *s = (double *)mlp__alloc((size_t)L->n_out, 2 * sizeof(double), 1);
            if (!s) { MLP_FREE(w); return MLP_ENOMEM; }
            mlp__batchnorm_affine(L, s, s + L->n_out);
            for (j = 0; j < L->n_out; j++) { w[j] = (float)s[j]; b[j] = (float)s[L->n_out + j]; }
            mlp__emit_floats(t, name, "s", k, w, (size_t)L->n_out);
            mlp__emit_floats(t, name, "t", k, b, (size_t)L->n_out);
            MLP_FREE(s);
        } else if (mlp__folded_dense(net, l, w, b) != MLP_OK) {
            MLP_FREE(w);
            return MLP_ENOMEM;
        } else if (int8) { /* the int8 rows live in the buffer's tail */
            signed char *q = (signed char *)(b + 2 * L->n_out);
            mlp__quantize(w, L->n_in, L->n_out, q, b + L->n_out);
            mlp__emit_int8(t, name, k, q, size);
            mlp__emit_floats(t, name, "qs", k, b + L->n_out, (size_t)L->n_out);
            mlp__emit_floats(t, name, "b", k, b, (size_t)L->n_out);
        } else {
            mlp__emit_floats(t, name, "w", k, w, size);
            mlp__emit_floats(t, name, "b", k, b, (size_t)L->n_out);
        }
        MLP_FREE(w);
    }
    return MLP_OK;
}

/* The helpers every exported model carries (static inline: a unit that
   includes the header and never calls them gets no warning). */
static void mlp__emit_helpers(mlp__text *t, const char *name, const char *upper, int int8)
{
    mlp__emit(t,
        "#ifdef %s_NO_LIBC\n"
        "/* e^x = 2^k e^r, |r| <= ln(2)/2: Cody-Waite reduction and a degree-6\n"
        "   polynomial, relative error below 3e-7; 0 below -87 */\n"
        "static inline float %s_exp(float x)\n{\n"
        "    float k, r, p, scale = 1.0f, two;\n"
        "    int n;\n"
        "    if (x < -87.0f) return 0.0f;\n"
        "    if (x > 88.0f) x = 88.0f;\n"
        "    k = (float)(int)(x * 1.44269504f + (x >= 0.0f ? 0.5f : -0.5f));\n"
        "    r = (x - k * 0.693145752f) - k * 1.42860677e-06f;\n"
        "    p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));\n"
        "    n = (int)k;\n"
        "    two = n < 0 ? 0.5f : 2.0f;\n"
        "    for (n = n < 0 ? -n : n; n; n >>= 1, two *= two)\n"
        "        if (n & 1) scale *= two;\n"
        "    return p * scale;\n}\n"
        "static inline float %s_tanh(float x)\n{\n"
        "    float e = %s_exp(-2.0f * (x < 0.0f ? -x : x)), y = (1.0f - e) / (1.0f + e);\n"
        "    return x < 0.0f ? -y : y;\n}\n"
        "#else\n"
        "#include <math.h>\n"
        "static inline float %s_exp(float x) { return expf(x); }\n"
        "static inline float %s_tanh(float x) { return tanhf(x); }\n"
        "#endif\n\n"
        "/* y = x W + b: x is n_in values, W n_in x n_out (row-major) */\n"
        "static inline void %s_dense(const float *x, int n_in, const float *W, const float *b, int n_out, float *y)\n{\n"
        "    int i, j;\n"
        "    for (j = 0; j < n_out; j++) y[j] = b[j];\n"
        "    for (i = 0; i < n_in; i++) {\n"
        "        const float xi = x[i], *row = W + (long)i * n_out;\n"
        "        for (j = 0; j < n_out; j++) y[j] += xi * row[j];\n"
        "    }\n}\n\n",
        upper, name, name, name, name, name, name);
    if (int8)
        mlp__emit(t,
            "/* y = b + s (x Q): Q holds unit j's n_in weights in row j as integers\n"
            "   -127..127, s its scale */\n"
            "static inline void %s_dense_int8(const float *x, int n_in, const signed char *Q, const float *s,\n"
            "                                 const float *b, int n_out, float *y)\n{\n"
            "    int i, j;\n"
            "    for (j = 0; j < n_out; j++) {\n"
            "        const signed char *row = Q + (long)j * n_in;\n"
            "        float acc = 0.0f;\n"
            "        for (i = 0; i < n_in; i++) acc += x[i] * (float)row[i];\n"
            "        y[j] = b[j] + s[j] * acc;\n"
            "    }\n}\n\n", name);
}

static void mlp__emit_activation(mlp__text *t, const char *name, mlp_act act, const char *v, int n)
{
    if (act == MLP_ACT_RELU)
        mlp__emit(t, "    for (j = 0; j < %d; j++) %s[j] = %s[j] > 0.0f ? %s[j] : 0.0f;\n", n, v, v, v);
    else if (act == MLP_ACT_SIGMOID) /* never exponentiates a large positive number */
        mlp__emit(t, "    for (j = 0; j < %d; j++) {\n"
                     "        float e = %s_exp(%s[j] < 0.0f ? %s[j] : -%s[j]);\n"
                     "        %s[j] = %s[j] < 0.0f ? e / (1.0f + e) : 1.0f / (1.0f + e);\n    }\n",
                  n, name, v, v, v, v, v);
    else if (act == MLP_ACT_TANH)
        mlp__emit(t, "    for (j = 0; j < %d; j++) %s[j] = %s_tanh(%s[j]);\n", n, v, name, v);
}

/* NAME_predict: layer after layer between two stack buffers a and b */
static void mlp__emit_predict(mlp__text *t, const mlp_net *net, const char *name, int int8)
{
    int l, widest = mlp_input_width(net), in_a = 1, n_out = mlp_output_width(net);
    const char *cur;
    for (l = 0; l < net->n_layers; l++) if (net->layers[l].n_out > widest) widest = net->layers[l].n_out;
    mlp__emit(t, "static inline int %s_predict(const float *raw, float *probs)\n{\n"
                 "    float a[%d], b[%d], top;\n"
                 "    int j, best = 0;\n"
                 "    for (j = 0; j < %d; j++) a[j] = raw[j] * ",
              name, widest, widest, mlp_input_width(net));
    mlp__emit_float(t, net->input_scale);
    mlp__emit(t, " + ");
    mlp__emit_float(t, net->input_offset);
    mlp__emit(t, ";\n");
    if (net->col_scale) /* the same two steps as mlp_normalize_input, for the same floats */
        mlp__emit(t, "    for (j = 0; j < %d; j++) a[j] = a[j] * %s_column_scale[j] + %s_column_offset[j];\n",
                  mlp_input_width(net), name, name);
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        const char *x = in_a ? "a" : "b", *y = in_a ? "b" : "a";
        if (L->kind == MLP_LAYER_DENSE) {
            int folded = l + 1 < net->n_layers && net->layers[l + 1].kind == MLP_LAYER_BATCHNORM;
            int k = mlp__count_kind(net, L->kind, l);
            if (int8)
                mlp__emit(t, "    %s_dense_int8(%s, %d, %s_q%d, %s_qs%d, %s_b%d, %d, %s);%s\n", name, x, L->n_in, name, k, name, k,
                          name, k, L->n_out, y, folded ? " /* batchnorm folded in */" : "");
            else
                mlp__emit(t, "    %s_dense(%s, %d, %s_w%d, %s_b%d, %d, %s);%s\n", name, x, L->n_in, name, k, name, k, L->n_out, y,
                          folded ? " /* batchnorm folded in */" : "");
            in_a = !in_a;
        } else if (L->kind == MLP_LAYER_BATCHNORM && !(l > 0 && net->layers[l - 1].kind == MLP_LAYER_DENSE)) {
            mlp__emit(t, "    for (j = 0; j < %d; j++) %s[j] = %s[j] * %s_s%d[j] + %s_t%d[j];\n", L->n_out, x, x, name,
                      mlp__count_kind(net, L->kind, l), name, mlp__count_kind(net, L->kind, l));
        } else if (L->kind == MLP_LAYER_ACT) {
            mlp__emit_activation(t, name, L->act, x, L->n_out);
        } /* dropout: the identity at inference */
    }
    cur = in_a ? "a" : "b";
    mlp__emit(t, "    for (j = 1; j < %d; j++) if (%s[j] > %s[best]) best = j;\n", n_out, cur, cur);
    if (net->loss == MLP_LOSS_CE)
        mlp__emit(t, "    if (probs) { /* softmax, shifted by the largest output */\n"
                     "        float sum = 0.0f;\n"
                     "        top = %s[best];\n"
                     "        for (j = 0; j < %d; j++) sum += probs[j] = %s_exp(%s[j] - top);\n"
                     "        for (j = 0; j < %d; j++) probs[j] /= sum;\n    }\n",
                  cur, n_out, name, cur, n_out);
    else
        mlp__emit(t, "    (void)top;\n    if (probs) for (j = 0; j < %d; j++) probs[j] = %s[j];\n", n_out, cur);
    mlp__emit(t, "    return best;\n}\n");
}

static int mlp__export_c(const mlp_net *net, const char *path, const char *name, int int8)
{
    mlp__text t;
    char upper[65], names_note[128];
    size_t i;
    int rc, l, bn = 0;
    if (!net || !path) return mlp__fail(MLP_EARG, "mlp_export_c: NULL argument");
    if (!name) name = "mlp_model";
    for (i = 0; i < net->n_params; i++)
        if (!isfinite(net->params[i])) return mlp__fail(MLP_ENUMERIC, "mlp_export_c: parameter %lu is %g", (unsigned long)i, (double)net->params[i]);
    for (l = 0; l < net->n_layers; l++) {
        const mlp_layer *L = &net->layers[l];
        if (L->kind == MLP_LAYER_BATCHNORM) bn = 1;
    }
    if (!mlp__c_identifier(name))
        return mlp__fail(MLP_EARG, "mlp_export_c: name \"%.80s\" is not a C identifier of at most 64 characters", name);
    for (i = 0; name[i]; i++) upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    upper[i] = 0;
    memset(&t, 0, sizeof t);
    /* 20 characters per float at most ("-1.23456789e-38f, " and a line
       break every 8), and a few kilobytes per layer of code */
    names_note[0] = 0;
    if (net->class_names) snprintf(names_note, sizeof names_note, "\n            (%s_class_name(class) is its name)", name);
    t.cap = net->n_params * 20 + (size_t)net->n_layers * 4096 + 8192 + (size_t)mlp_input_width(net) * 40 +
            (net->class_names ? (size_t)mlp_output_width(net) * (4 * MLP_MAX_NAME + 8) : 0);
    if (!(t.p = (char *)mlp__alloc(t.cap, 1, 1))) return MLP_ENOMEM;
    mlp__emit(&t, "/* %s.h - a network exported by mlp.h %d.%d.%d (mlp_export_c%s): ", name,
              MLP_VERSION_MAJOR, MLP_VERSION_MINOR, MLP_VERSION_PATCH, int8 ? "_int8, weights as 8-bit integers" : "");
    for (l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == MLP_LAYER_DENSE) mlp__emit(&t, "%d-", net->layers[l].n_in);
    mlp__emit(&t, "%d%s.\n\n"
                  "   int %s_predict(const float *raw, float *probs);\n"
                  "     raw    %s_INPUTS values as the data holds them (for MNIST, pixels\n"
                  "            0-255): the model's input normalisation is applied here\n"
                  "     probs  NULL, or room for %s_OUTPUTS %s\n"
                  "     returns the index of the largest output: the predicted class%s\n\n"
                  "   Standalone: no mlp.h, no allocation (two float arrays of the widest\n"
                  "   layer on the stack), reentrant; libc's expf and tanhf only, or nothing\n"
                  "   from libc with %s_NO_LIBC defined before including this file. */\n"
                  "#ifndef %s_H_INCLUDED\n#define %s_H_INCLUDED\n\n"
                  "#define %s_INPUTS %d\n#define %s_OUTPUTS %d\n\n",
              mlp_output_width(net), bn ? ", batchnorm folded into the weights" : "",
              name, upper, upper,
              net->loss == MLP_LOSS_CE ? "class probabilities (softmax)" : "outputs (the network's own values)",
              names_note,
              upper, upper, upper, upper, mlp_input_width(net), upper, mlp_output_width(net));
    mlp__emit_helpers(&t, name, upper, int8);
    if ((rc = mlp__emit_arrays(&t, net, name, int8)) != MLP_OK) { MLP_FREE(t.p); return rc; }
    mlp__emit(&t, "\n");
    mlp__emit_predict(&t, net, name, int8);
    mlp__emit(&t, "\n#endif /* %s_H_INCLUDED */\n", upper);
    if (t.overflow) { MLP_FREE(t.p); return mlp__fail(MLP_EARG, "mlp_export_c: the source outgrew its %lu-byte estimate", (unsigned long)t.cap); }
    rc = mlp__write_atomic(path, t.p, t.n);
    MLP_FREE(t.p);
    return rc;
}

MLPDEF int mlp_export_c(const mlp_net *net, const char *path, const char *name)
{
    return mlp__export_c(net, path, name, 0);
}

MLPDEF int mlp_export_c_int8(const mlp_net *net, const char *path, const char *name)
{
    return mlp__export_c(net, path, name, 1);
}
#endif

/* ---- image preprocessing ------------------------------------------------- */
/* MNIST was made by taking each NIST digit, scaling it so that its longer
   side is 20 pixels (anti-aliased), and placing it in a 28 x 28 field so its
   centre of mass is at the centre. A photo or a drawing differs in every
   respect: polarity, lighting, noise, stray marks, stroke width, size,
   position. The stages below undo each difference, in the order a picture
   flows through them:

     composite  -> working page   alpha over a contrasting paper, resampled so
                                  the shorter side is at least 128 pixels
                                  and the area at most 320 x 320
     denoise                      3x3 median: sensor noise and salt-and-pepper
     polarity, background         light ink on dark paper turned around; paper
                                  brightness estimated locally and divided
                                  out: lighting gradients and shadows vanish
     threshold, components        the digit's connected pieces kept, specks and
                                  far marks dropped
     strokes                      stroke width brought into MNIST's range
     crop, scale, centre          longer side 20 pixels, centre of mass where
                                  MNIST's lies

   Everything after the first resampling works on at most 2 x 320 x 320
   pixels, so time and memory are bounded whatever the picture's size. */

/* Mean centre of mass of the 60,000 MNIST training digits, (x, y) in pixel
   coordinates (pixel centres at integers), measured with mlp.h's own loader:
   tools/mnist_centre prints x 14.007, y 13.996 (checked by tests/test_mnist.c). */
#define MLP__MNIST_COM_X 14.01f
#define MLP__MNIST_COM_Y 14.00f
#define MLP__DIGIT_BOX 20
#define MLP__INK_FLOOR 0.15f     /* fraction of the peak ink below which a pixel is paper */
#define MLP__PAGE_MIN 128        /* working page: shorter side at least this (a median */
#define MLP__PAGE_MAX 320        /* filter must not eat thin strokes), area about this^2 */
#define MLP__MIN_CONTRAST 0.06f  /* ink darker than the paper by less is no ink */
#define MLP__CANVAS 64           /* stroke normalisation canvas: the digit's longer side */
#define MLP__CANVAS_PAD 8

/* x clamped to [0, 1], NaN to 0: whatever the caller passes, the histogram
   below indexes with it */
static float mlp__unit(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }
static float mlp__minf(float a, float b) { return a < b ? a : b; }
static float mlp__maxf(float a, float b) { return a > b ? a : b; }

/* The working page: the picture at a bounded resolution, then its ink map. */
typedef struct mlp__page {
    int w, h;
    float scale;      /* page pixels per picture pixel */
    float *buffer;    /* the allocation gray and ink live in */
    float *gray;      /* paper bright, ink dark, 0..1 */
    float *ink;       /* 0 on paper, up to 1 on the darkest ink */
    int *label;       /* connected component of each pixel, -1 on paper */
    int *dist;        /* (w + 2) x (h + 2) scratch for distances */
    float threshold;  /* ink >= threshold is part of a component */
} mlp__page;

typedef struct mlp__component {
    int x0, y0, x1, y1;  /* bounding box, inclusive */
    int area, on_border;
    double mass;         /* sum of ink */
    int keep;
} mlp__component;

/* Resamples the box (x0, y0, bw, bh) of src (width w) to dst (dw x dh):
   area averaging when shrinking (each output pixel is the mean of the source
   area it covers), bilinear interpolation when enlarging. */
static float mlp__area_sample(const float *src, int w, float fx0, float fx1, float fy0, float fy1)
{
    int x, y;
    double sum = 0.0, area = 0.0;
    for (y = (int)fy0; (float)y < fy1; y++) {
        float wy = (fy1 < (float)(y + 1) ? fy1 : (float)(y + 1)) - (fy0 > (float)y ? fy0 : (float)y);
        for (x = (int)fx0; (float)x < fx1; x++) {
            float wx = (fx1 < (float)(x + 1) ? fx1 : (float)(x + 1)) - (fx0 > (float)x ? fx0 : (float)x);
            sum += (double)src[(size_t)y * w + x] * wx * wy;
            area += (double)wx * wy;
        }
    }
    return area > 0.0 ? (float)(sum / area) : 0.0f;
}

static float mlp__bilinear(const float *src, int w, int x0, int y0, int bw, int bh, float fx, float fy)
{
    int ix, iy, jx, jy;
    float tx, ty;
    if (fx < 0.0f) fx = 0.0f;
    if (fy < 0.0f) fy = 0.0f;
    if (fx > (float)(bw - 1)) fx = (float)(bw - 1);
    if (fy > (float)(bh - 1)) fy = (float)(bh - 1);
    ix = (int)fx; iy = (int)fy; tx = fx - (float)ix; ty = fy - (float)iy;
    jx = ix + 1 < bw ? ix + 1 : ix; jy = iy + 1 < bh ? iy + 1 : iy;
    return (1 - ty) * ((1 - tx) * src[(size_t)(y0 + iy) * w + x0 + ix] + tx * src[(size_t)(y0 + iy) * w + x0 + jx]) +
           ty * ((1 - tx) * src[(size_t)(y0 + jy) * w + x0 + ix] + tx * src[(size_t)(y0 + jy) * w + x0 + jx]);
}

static void mlp__resample(float *dst, int dstride, int dw, int dh, const float *src, int w, int x0, int y0, int bw, int bh)
{
    int x, y;
    float sx = (float)bw / (float)dw, sy = (float)bh / (float)dh;
    for (y = 0; y < dh; y++)
        for (x = 0; x < dw; x++)
            dst[y * dstride + x] = sx >= 1.0f && sy >= 1.0f
                /* (x + 1) * sx may round past the crop: clamp, or the last
                   row read could be the one below the image */
                ? mlp__area_sample(src, w, x0 + x * sx, mlp__minf(x0 + (x + 1) * sx, (float)(x0 + bw)),
                                   y0 + y * sy, mlp__minf(y0 + (y + 1) * sy, (float)(y0 + bh)))
                : mlp__bilinear(src, w, x0, y0, bw, bh, (x + 0.5f) * sx - 0.5f, (y + 0.5f) * sy - 0.5f);
}

/* The paper behind transparent pixels: chosen to contrast with the ink, so
   that a drawing on a transparent background keeps its ink. */
static float mlp__alpha_paper(const float *pixels, size_t n)
{
    size_t i;
    double ink = 0.0, weight = 0.0;
    for (i = 0; i < n; i++) { ink += (double)mlp__unit(pixels[2 * i]) * mlp__unit(pixels[2 * i + 1]); weight += mlp__unit(pixels[2 * i + 1]); }
    return weight > 0.0 && ink / weight < 0.5 ? 1.0f : 0.0f;
}

/* v = alpha g + (1 - alpha) paper at picture pixel i */
static float mlp__composite_at(const float *pixels, size_t i, int channels, float paper)
{
    float a;
    if (channels == 1) return mlp__unit(pixels[i]);
    a = mlp__unit(pixels[2 * i + 1]);
    return a * mlp__unit(pixels[2 * i]) + (1.0f - a) * paper;
}

/* Composites the picture and resamples it to the page: area averaging when
   shrinking, composited on the fly (every picture pixel counted once, and no
   copy of a huge picture), bilinear when enlarging (a tiny drawing's strokes
   must be several pixels wide before the median filter sees them). */
static void mlp__fill_page(mlp__page *p, const float *pixels, int w, int h, int channels)
{
    float paper = channels == 2 ? mlp__alpha_paper(pixels, (size_t)w * h) : 1.0f;
    float *scratch = p->ink; /* n floats, free until the median filter */
    int x, y, n = p->w * p->h;
    if (p->scale > 1.0f) { /* each picture pixel becomes s x s page pixels */
        int s = (int)p->scale;
        (void)scratch;
        for (y = 0; y < p->h; y++)
            for (x = 0; x < p->w; x++) p->gray[y * p->w + x] = mlp__composite_at(pixels, (size_t)(y / s) * w + x / s, channels, paper);
        return;
    }
    for (x = 0; x < n; x++) p->gray[x] = scratch[x] = 0.0f; /* scratch: picture pixels per page pixel */
    for (y = 0; y < h; y++) {
        /* page pixel floor(x p->w / w): every page pixel gets picture pixels;
           stepped along the row without a division per pixel */
        float *row = p->gray + (size_t)((int64_t)y * p->h / h) * p->w, *count = scratch + (row - p->gray);
        int px = 0, over = 0; /* over = x p->w - px w */
        for (x = 0; x < w; x++) {
            row[px] += mlp__composite_at(pixels, (size_t)y * w + x, channels, paper);
            count[px] += 1.0f;
            for (over += p->w; over >= w; over -= w) px++;
        }
    }
    for (x = 0; x < n; x++) p->gray[x] /= scratch[x];
}

/* A running max over windows of 2r + 1 along a line of n values, in three
   passes whatever r is (van Herk 1992, Gil and Werman 1993): per block of
   2r + 1, prefix and suffix maxima; a window then spans at most two
   blocks. buf holds 3 (n + 2r + 1) floats; outside the line counts as
   nothing. */
static void mlp__running_max(float *v, int n, int r, float *buf)
{
    int k = 2 * r + 1, len = n + 2 * r, i;
    float *pad = buf, *pre = buf + len + 1, *suf = pre + len + 1;
    int start, end;
    for (i = 0; i < len; i++) pad[i] = i < r || i >= r + n ? -1e30f : v[i - r];
    for (start = 0; start < len; start += k) {
        end = start + k < len ? start + k : len;
        pre[start] = pad[start];
        for (i = start + 1; i < end; i++) pre[i] = mlp__maxf(pre[i - 1], pad[i]);
        suf[end - 1] = pad[end - 1];
        for (i = end - 2; i >= start; i--) suf[i] = mlp__maxf(suf[i + 1], pad[i]);
    }
    for (i = 0; i < n; i++) v[i] = mlp__maxf(suf[i], pre[i + 2 * r]); /* window pad[i .. i + 2r] */
}

/* The max (take_max) or min over the (2r + 1)^2 square around each pixel:
   rows, then the rows of the transpose (columns read in place would stride
   through memory). A min is the max of the negated values. tmp holds w h
   floats, buf 3 (max(w, h) + 2r + 1). */
static void mlp__square_extreme(float *v, int w, int h, int r, int take_max, float *tmp, float *buf)
{
    int x, y, n = w * h;
    if (!take_max) for (x = 0; x < n; x++) v[x] = -v[x];
    for (y = 0; y < h; y++) mlp__running_max(v + (size_t)y * w, w, r, buf);
    mlp__transpose(tmp, h, v, w, h, w);
    for (x = 0; x < w; x++) mlp__running_max(tmp + (size_t)x * h, h, r, buf);
    mlp__transpose(v, w, tmp, h, w, h);
    if (!take_max) for (x = 0; x < n; x++) v[x] = -v[x];
}

/* Light ink on dark paper (chalk, a screen, MNIST itself) is turned around,
   so every later stage sees dark ink on bright paper. The ink is on the
   side of the paper level (the border's median) that strays further from
   it: comparing the paper with 0.5 instead read dark ink on dark-coloured
   paper backwards. Lighting gradients stray to both sides about equally; a
   shadow over half the border can still mislead it. */
static int mlp__ink_is_bright(const float *v, int w, int h)
{
    int hist[256] = {0}, n = 0, x, y, seen = 0, b;
    float paper, margin = 0.08f;
    double darker = 0.0, brighter = 0.0;
    for (x = 0; x < w; x++) { hist[(int)(v[x] * 255.0f + 0.5f)]++; hist[(int)(v[(size_t)(h - 1) * w + x] * 255.0f + 0.5f)]++; n += 2; }
    for (y = 1; y + 1 < h; y++) { hist[(int)(v[(size_t)y * w] * 255.0f + 0.5f)]++; hist[(int)(v[(size_t)y * w + w - 1] * 255.0f + 0.5f)]++; n += 2; }
    for (b = 0; b < 256; b++) if ((seen += hist[b]) * 2 >= n) break;
    paper = (float)b / 255.0f;
    for (x = 0; x < w * h; x++) {
        float d = v[x] - paper;
        if (d > margin) brighter += d - margin;
        if (-d > margin) darker += -d - margin;
    }
    return brighter > darker || (brighter == darker && paper < 0.5f);
}

/* Fixes: one global background level, which left a lighting gradient or a
   shadow as "ink". The paper under each pixel is the morphological closing
   of the picture (the max over a square a quarter of the page's shorter
   side wide, then the min over the same square): it fills in every dark
   stroke narrower than the square, while slopes of light and the edges of
   shadows pass through it unchanged. Dividing by it removes the lighting: a
   pixel's ink is how much darker than the paper under the same light it is. */
static int mlp__remove_background(mlp__page *p, mlp_stage_fn show, void *user)
{
    int x, n = p->w * p->h, r = (p->w < p->h ? p->w : p->h) / 8, longer = p->w > p->h ? p->w : p->h;
    float *paper, *tmp, *buf;
    if (r < 2) r = 2;
    paper = (float *)mlp__alloc((size_t)2 * n + 3 * ((size_t)longer + 2 * r + 1), 1, sizeof(float));
    if (!paper) return MLP_ENOMEM;
    tmp = paper + n; buf = tmp + n;
    if (mlp__ink_is_bright(p->gray, p->w, p->h)) for (x = 0; x < n; x++) p->gray[x] = 1.0f - p->gray[x];
    for (x = 0; x < n; x++) paper[x] = p->gray[x];
    mlp__square_extreme(paper, p->w, p->h, r, 1, tmp, buf);
    mlp__square_extreme(paper, p->w, p->h, r, 0, tmp, buf);
    for (x = 0; x < n; x++) {
        float d = (paper[x] - p->gray[x]) / mlp__maxf(paper[x], 0.05f);
        p->ink[x] = d > 0.0f ? mlp__minf(d, 1.0f) : 0.0f;
    }
    if (show) { /* stage images are 0 on paper, 1 on ink: the darkness of the paper */
        for (x = 0; x < n; x++) paper[x] = 1.0f - paper[x];
        show(user, "background (how dark the paper is)", paper, p->w, p->h);
        show(user, "ink (background divided out)", p->ink, p->w, p->h);
    }
    MLP_FREE(paper);
    return MLP_OK;
}

#define MLP__SORT2(a, b) do { float lo_ = mlp__minf(a, b); b = mlp__maxf(a, b); a = lo_; } while (0)
/* median of 9 by a 19-exchange network (Paeth's) */
static float mlp__median9(float *v)
{
    MLP__SORT2(v[1], v[2]); MLP__SORT2(v[4], v[5]); MLP__SORT2(v[7], v[8]);
    MLP__SORT2(v[0], v[1]); MLP__SORT2(v[3], v[4]); MLP__SORT2(v[6], v[7]);
    MLP__SORT2(v[1], v[2]); MLP__SORT2(v[4], v[5]); MLP__SORT2(v[7], v[8]);
    MLP__SORT2(v[0], v[3]); MLP__SORT2(v[5], v[8]); MLP__SORT2(v[4], v[7]);
    MLP__SORT2(v[3], v[6]); MLP__SORT2(v[1], v[4]); MLP__SORT2(v[2], v[5]);
    MLP__SORT2(v[4], v[7]); MLP__SORT2(v[4], v[2]); MLP__SORT2(v[6], v[4]);
    MLP__SORT2(v[4], v[2]);
    return v[4];
}

/* Fixes: sensor noise and salt-and-pepper specks, which passed the threshold
   and stretched the digit's box over the whole picture. A 3x3 median drops
   any speck smaller than half its window, and a stroke at least 2 pixels
   wide survives it (the page is at least 128 pixels, so a digit's strokes
   are). dst must not be src. */
static void mlp__median3x3(float *dst, const float *src, int w, int h)
{
    int x, y, i, j;
    float v[9];
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            int k = 0;
            if (x > 0 && y > 0 && x + 1 < w && y + 1 < h) { /* inside: no clamping */
                const float *s = src + (size_t)(y - 1) * w + x - 1;
                v[0] = s[0]; v[1] = s[1]; v[2] = s[2]; s += w;
                v[3] = s[0]; v[4] = s[1]; v[5] = s[2]; s += w;
                v[6] = s[0]; v[7] = s[1]; v[8] = s[2];
            } else /* on the edge: the nearest pixel stands in for the missing ones */
                for (j = -1; j <= 1; j++)
                    for (i = -1; i <= 1; i++) {
                        int xx = x + i < 0 ? 0 : x + i >= w ? w - 1 : x + i;
                        int yy = y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j;
                        v[k++] = src[yy * w + xx];
                    }
            dst[y * w + x] = mlp__median9(v);
        }
}

/* The ink threshold: a fraction of the strongest ink, but well above what
   the paper itself shows (its typical ink level, the median, plus 4 robust
   standard deviations, from the median absolute deviation: noise left
   after the median filter) and above a minimum contrast. Returns how far
   the strongest ink stands above that typical level. */
static float mlp__ink_threshold(mlp__page *p)
{
    int hist[1024] = {0}, dev[1024] = {0}, i, n = p->w * p->h, seen = 0, b, level;
    float peak = 0.0f, spread;
    for (i = 0; i < n; i++) {
        hist[(int)(p->ink[i] * 1023.0f + 0.5f)]++;
        if (p->ink[i] > peak) peak = p->ink[i];
    }
    for (level = 0; level < 1023; level++) if ((seen += hist[level]) * 2 >= n) break;
    for (b = 0; b < 1024; b++) dev[b > level ? b - level : level - b] += hist[b];
    for (seen = 0, b = 0; b < 1023; b++) if ((seen += dev[b]) * 2 >= n) break;
    spread = 1.4826f * (float)b / 1023.0f;
    p->threshold = mlp__maxf(mlp__maxf(0.35f * peak, (float)level / 1023.0f + 4.0f * spread),
                             (float)level / 1023.0f + MLP__MIN_CONTRAST);
    return peak - (float)level / 1023.0f;
}

/* union-find root with path halving; a root is the smallest index of its
   set, so parent[i] <= i always */
static int mlp__root(int *parent, int i)
{
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

static void mlp__unite(int *parent, int a, int b)
{
    a = mlp__root(parent, a); b = mlp__root(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

/* Labels the 8-connected components of ink >= threshold (p->label: the
   component's number, -1 on paper) and describes each; returns their number
   or a negative code. */
static int mlp__find_components(mlp__page *p, mlp__component **out)
{
    int x, y, i, n = p->w * p->h, count = 0;
    int *label = p->label;
    mlp__component *c;
    for (y = 0; y < p->h; y++)
        for (x = 0; x < p->w; x++) {
            int k = y * p->w + x, j;
            label[k] = -1;
            if (p->ink[k] < p->threshold) continue;
            label[k] = k;
            /* the neighbours already visited: left, and the three above */
            if (x > 0 && label[k - 1] >= 0) mlp__unite(label, k, k - 1);
            for (j = -1; y > 0 && j <= 1; j++)
                if (x + j >= 0 && x + j < p->w && label[k - p->w + j] >= 0) mlp__unite(label, k, k - p->w + j);
        }
    /* number the sets in scan order: a parent comes before its child, so it
       is numbered already (numbers stored as -2 - number until the end) */
    for (i = 0; i < n; i++) {
        if (label[i] == -1) continue;
        label[i] = label[i] == i ? -2 - count++ : label[label[i]];
    }
    for (i = 0; i < n; i++) if (label[i] <= -2) label[i] = -2 - label[i];
    if (!(c = (mlp__component *)mlp__alloc((size_t)(count ? count : 1), 1, sizeof(mlp__component)))) return MLP_ENOMEM;
    for (i = 0; i < count; i++) {
        c[i].x0 = p->w; c[i].y0 = p->h; c[i].x1 = c[i].y1 = -1;
        c[i].area = c[i].on_border = c[i].keep = 0; c[i].mass = 0.0;
    }
    for (y = 0; y < p->h; y++)
        for (x = 0; x < p->w; x++) {
            int id = label[y * p->w + x];
            mlp__component *k;
            if (id < 0) continue;
            k = &c[id];
            if (x < k->x0) k->x0 = x;
            if (x > k->x1) k->x1 = x;
            if (y < k->y0) k->y0 = y;
            if (y > k->y1) k->y1 = y;
            k->area++;
            k->mass += p->ink[y * p->w + x];
            if (x == 0 || y == 0 || x == p->w - 1 || y == p->h - 1) k->on_border++;
        }
    *out = c;
    return count;
}

/* Fixes: specks, smudges and second marks taken for part of the digit. The
   digit is the component with the most ink; components of some weight that
   reach into its box (grown by a quarter of its size: a broken stroke, a
   5's detached flag) join it, and the rest is dropped. Returns the number
   of components kept (0: none is digit-like). */
static int mlp__select_digit(mlp__component *c, int count, int *box)
{
    int i, main = -1, grew = 1, kept = 1, round;
    for (i = 0; i < count; i++) if (main < 0 || c[i].mass > c[main].mass) main = i;
    if (main < 0) return 0;
    c[main].keep = 1;
    box[0] = c[main].x0; box[1] = c[main].y0; box[2] = c[main].x1; box[3] = c[main].y1;
    for (round = 0; grew && round < 4; round++) {
        int size = box[2] - box[0] > box[3] - box[1] ? box[2] - box[0] + 1 : box[3] - box[1] + 1, margin = size / 4;
        grew = 0;
        for (i = 0; i < count; i++) {
            if (c[i].keep || c[i].mass < 0.03 * c[main].mass) continue;
            if (c[i].x1 < box[0] - margin || c[i].x0 > box[2] + margin || c[i].y1 < box[1] - margin || c[i].y0 > box[3] + margin) continue;
            c[i].keep = 1; kept++; grew = 1;
            if (c[i].x0 < box[0]) box[0] = c[i].x0;
            if (c[i].y0 < box[1]) box[1] = c[i].y0;
            if (c[i].x1 > box[2]) box[2] = c[i].x1;
            if (c[i].y1 > box[3]) box[3] = c[i].y1;
        }
    }
    return kept;
}

/* Why the kept components are not a digit to read, or NULL if they are. */
static const char *mlp__not_a_digit(const mlp__page *p, const mlp__component *c, int count, const int *box)
{
    int i, area = 0, bw = box[2] - box[0] + 1, bh = box[3] - box[1] + 1;
    int longest = bw > bh ? bw : bh, page = p->w < p->h ? p->w : p->h;
    for (i = 0; i < count; i++) if (c[i].keep) area += c[i].area;
    if (area < 24 || longest < 10 || longest * 10 < page) return "no digit found (only specks: nothing digit-sized)";
    if (bw > 3 * bh) return "no digit found (a line or a smudge, not a digit)";
    return NULL;
}

/* The digit alone, as MNIST-like intensities: the ink of the kept
   components, grown into the fainter ink connected to them (down to
   MLP__INK_FLOOR of their peak: the anti-aliased edges a single threshold
   would cut off, however much the page enlarged them) within a margin of
   their box, stretched so the strongest ink is 1 and the floor 0. queue
   holds w h ints. */
static void mlp__digit_ink(float *dst, const mlp__page *p, const mlp__component *c, const int *box, int *queue)
{
    int x, y, head = 0, tail = 0, n = p->w * p->h, margin = 2 + (int)p->scale;
    int x0 = box[0] - margin, y0 = box[1] - margin, x1 = box[2] + margin, y1 = box[3] + margin;
    float peak = 0.0f, floor_ink;
    for (x = 0; x < n; x++) dst[x] = 0.0f;
    for (y = box[1]; y <= box[3]; y++)
        for (x = box[0]; x <= box[2]; x++) {
            int k = y * p->w + x, id = p->label[k];
            if (id < 0 || !c[id].keep) continue;
            if (p->ink[k] > peak) peak = p->ink[k];
            dst[k] = -1.0f; /* reached */
            queue[tail++] = k;
        }
    floor_ink = MLP__INK_FLOOR * peak;
    while (head < tail) { /* breadth first through the 8 neighbours */
        int k = queue[head++], kx = k % p->w, ky = k / p->w, i, j;
        for (j = -1; j <= 1; j++)
            for (i = -1; i <= 1; i++) {
                int xx = kx + i, yy = ky + j, q = yy * p->w + xx;
                if (xx < x0 || yy < y0 || xx > x1 || yy > y1 || xx < 0 || yy < 0 || xx >= p->w || yy >= p->h) continue;
                if (dst[q] != 0.0f || p->ink[q] <= floor_ink) continue;
                dst[q] = -1.0f;
                queue[tail++] = q;
            }
    }
    for (x = 0; x < tail; x++) {
        int k = queue[x];
        dst[k] = mlp__minf((p->ink[k] / peak - MLP__INK_FLOOR) / (1.0f - MLP__INK_FLOOR), 1.0f);
    }
}

/* Stroke width in pixels of the ink >= 0.5 in the box (x0, y0, bw, bh) of v
   (width w): a uniform stroke W pixels wide has mean distance-to-paper
   (W + 2) / 4 over its pixels, so W = 4 mean - 2. Distances by the 3-4
   chamfer (within 8% of Euclidean); dist holds (bw + 2) x (bh + 2). */
static float mlp__stroke_width(const float *v, int w, int x0, int y0, int bw, int bh, int *dist)
{
    int dw = bw + 2, dh = bh + 2, x, y, unreached = 1 << 28;
    double sum = 0.0;
    long n = 0;
    for (y = 0; y < dh; y++)
        for (x = 0; x < dw; x++) {
            int inside = x > 0 && y > 0 && x <= bw && y <= bh && v[(size_t)(y0 + y - 1) * w + x0 + x - 1] >= 0.5f;
            dist[y * dw + x] = inside ? unreached : 0;
        }
    for (y = 1; y < dh - 1; y++)
        for (x = 1; x < dw - 1; x++) {
            int *d = &dist[y * dw + x];
            if (!*d) continue;
            if (d[-1] + 3 < *d) *d = d[-1] + 3;
            if (d[-dw] + 3 < *d) *d = d[-dw] + 3;
            if (d[-dw - 1] + 4 < *d) *d = d[-dw - 1] + 4;
            if (d[-dw + 1] + 4 < *d) *d = d[-dw + 1] + 4;
        }
    for (y = dh - 2; y >= 1; y--)
        for (x = dw - 2; x >= 1; x--) {
            int *d = &dist[y * dw + x];
            if (!*d) continue;
            if (d[1] + 3 < *d) *d = d[1] + 3;
            if (d[dw] + 3 < *d) *d = d[dw] + 3;
            if (d[dw + 1] + 4 < *d) *d = d[dw + 1] + 4;
            if (d[dw - 1] + 4 < *d) *d = d[dw - 1] + 4;
            sum += *d / 3.0; n++;
        }
    return n ? (float)(4.0 * sum / (double)n - 2.0) : 0.0f;
}

/* One Zhang-Suen sub-iteration: deletes the boundary pixels of b (w x h,
   zero border) that are neither end points nor needed for connectivity, on
   the south-east (step 0) or north-west (step 1) side. Returns how many. */
static int mlp__thin_step(unsigned char *b, unsigned char *mark, int w, int h, int step)
{
    int x, y, changed = 0;
    for (x = 0; x < w * h; x++) mark[x] = 0;
    for (y = 1; y < h - 1; y++)
        for (x = 1; x < w - 1; x++) {
            const unsigned char *q = &b[y * w + x];
            int p2 = q[-w], p3 = q[-w + 1], p4 = q[1], p5 = q[w + 1], p6 = q[w], p7 = q[w - 1], p8 = q[-1], p9 = q[-w - 1];
            int neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9;
            int transitions = (!p2 && p3) + (!p3 && p4) + (!p4 && p5) + (!p5 && p6) + (!p6 && p7) + (!p7 && p8) + (!p8 && p9) + (!p9 && p2);
            if (!*q || neighbours < 2 || neighbours > 6 || transitions != 1) continue;
            if (step == 0 ? (p2 && p4 && p6) || (p4 && p6 && p8) : (p2 && p4 && p8) || (p2 && p6 && p8)) continue;
            mark[y * w + x] = 1;
        }
    for (x = 0; x < w * h; x++) if (mark[x]) { b[x] = 0; changed++; }
    return changed;
}

/* Fixes: bold and hairline fonts, which MNIST's pen strokes never look like.
   The digit is drawn on a canvas with its longer side MLP__CANVAS pixels,
   thinned to its one-pixel skeleton (Zhang and Suen 1984) and redrawn with a
   round pen `width` canvas pixels wide, anti-aliased. canvas is cw x ch;
   scratch holds 2 cw ch bytes. */
static void mlp__redraw_strokes(float *canvas, int cw, int ch, float width, unsigned char *scratch)
{
    unsigned char *b = scratch, *mark = scratch + cw * ch;
    float r = 0.5f * (width - 1.0f); /* the skeleton pixel, then r on each side */
    int x, y, i, j, reach = (int)ceilf(r + 1.0f);
    float peak = 0.0f;
    for (x = 0; x < cw * ch; x++) peak = mlp__maxf(peak, canvas[x]);
    /* a quarter of the peak: a hairline shrunk onto the canvas is faint, and
       must stay connected */
    for (x = 0; x < cw * ch; x++) b[x] = canvas[x] >= 0.25f * peak;
    while (mlp__thin_step(b, mark, cw, ch, 0) + mlp__thin_step(b, mark, cw, ch, 1) > 0) {}
    for (x = 0; x < cw * ch; x++) canvas[x] = 0.0f;
    for (y = 0; y < ch; y++)
        for (x = 0; x < cw; x++) {
            if (!b[y * cw + x]) continue;
            for (j = -reach; j <= reach; j++)
                for (i = -reach; i <= reach; i++) {
                    int xx = x + i, yy = y + j;
                    float cover;
                    if (xx < 0 || yy < 0 || xx >= cw || yy >= ch) continue;
                    cover = mlp__unit(r + 0.5f - sqrtf((float)(i * i + j * j)));
                    if (cover > canvas[yy * cw + xx]) canvas[yy * cw + xx] = cover;
                }
        }
}

/* (dw, dh): the box bw x bh scaled so its longer side is `side`, aspect kept */
static void mlp__fit(int bw, int bh, int side, int *dw, int *dh)
{
    *dw = bw >= bh ? side : (int)((float)side * (float)bw / (float)bh + 0.5f);
    *dh = bh >= bw ? side : (int)((float)side * (float)bh / (float)bw + 0.5f);
    if (*dw < 1) *dw = 1;
    if (*dh < 1) *dh = 1;
}

/* The box of the nonzero pixels of v (w x h); 0 if there are none. */
static int mlp__ink_box(const float *v, int w, int h, int *box)
{
    int x, y;
    box[0] = w; box[1] = h; box[2] = box[3] = -1;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++)
            if (v[(size_t)y * w + x] > 0.0f) {
                if (x < box[0]) box[0] = x;
                if (x > box[2]) box[2] = x;
                if (y < box[1]) box[1] = y;
                if (y > box[3]) box[3] = y;
            }
    return box[2] >= 0;
}

/* MNIST's framing: the ink's box scaled so its longer side is 20 pixels,
   then shifted by whole pixels, as MNIST did, so that its centre of mass
   lands on MNIST's. out is 28 x 28, 0..255. */
static int mlp__place_digit(float *out, const float *v, int w, const int *box)
{
    float digit[MLP__DIGIT_BOX * MLP__DIGIT_BOX], peak = 0.0f;
    int x, y, dw, dh, shift_x, shift_y, bw = box[2] - box[0] + 1, bh = box[3] - box[1] + 1;
    double mass = 0.0, mx = 0.0, my = 0.0;
    mlp__fit(bw, bh, MLP__DIGIT_BOX, &dw, &dh);
    mlp__resample(digit, dw, dw, dh, v, w, box[0], box[1], bw, bh);
    for (x = 0; x < dw * dh; x++) if (digit[x] > peak) peak = digit[x];
    if (!(peak > 0.0f)) return mlp__fail(MLP_EFORMAT, "no digit found (the ink vanished when scaled)");
    for (y = 0; y < dh; y++)
        for (x = 0; x < dw; x++) {
            float m = digit[y * dw + x] /= peak;
            mass += m; mx += m * x; my += m * y;
        }
    shift_x = (int)floor(MLP__MNIST_COM_X - mx / mass + 0.5);
    shift_y = (int)floor(MLP__MNIST_COM_Y - my / mass + 0.5);
    for (x = 0; x < MLP_DIGIT_SIDE * MLP_DIGIT_SIDE; x++) out[x] = 0.0f;
    for (y = 0; y < dh; y++)
        for (x = 0; x < dw; x++) {
            int ox = x + shift_x, oy = y + shift_y;
            if (ox >= 0 && ox < MLP_DIGIT_SIDE && oy >= 0 && oy < MLP_DIGIT_SIDE)
                out[oy * MLP_DIGIT_SIDE + ox] = 255.0f * digit[y * dw + x];
        }
    return MLP_OK;
}

/* Relative stroke width (stroke width / the digit's longer side) of MNIST's
   training digits through this pipeline: median 0.107, 5% below 0.065, 5%
   above 0.18 (tests/test_mnist.c measures it again). Digits outside
   [LOW, HIGH] are redrawn at TARGET. */
#define MLP__STROKE_LOW 0.06f
#define MLP__STROKE_HIGH 0.20f
#define MLP__STROKE_TARGET 0.11f

static void mlp__page_free(mlp__page *p)
{
    MLP_FREE(p->buffer);
    MLP_FREE(p->label);
}

/* The picture on the working page, background removed and denoised;
   components not yet found. */
static int mlp__page_make(mlp__page *p, const float *pixels, int w, int h, int channels, mlp_stage_fn show, void *user)
{
    int longer = w > h ? w : h, shorter = w < h ? w : h, n, rc;
    float peak, *tmp;
    p->buffer = NULL; p->label = NULL;
    if (!pixels) return mlp__fail(MLP_EARG, "digit preprocessing: NULL pixels");
    if (channels != 1 && channels != 2) return mlp__fail(MLP_EARG, "digit preprocessing: %d channels (need 1 or 2)", channels);
    if (w < 1 || h < 1 || w > MLP_MAX_IMAGE_SIDE || h > MLP_MAX_IMAGE_SIDE)
        return mlp__fail(MLP_EARG, "image size %d x %d outside 1..%d", w, h, MLP_MAX_IMAGE_SIDE);
    /* the shorter side enlarged to MLP__PAGE_MIN, the area capped at
       MLP__PAGE_MAX^2 (a long strip of digits keeps its height), no side
       beyond 4 MLP__PAGE_MAX */
    if (shorter < MLP__PAGE_MIN) { /* enlarged by a whole factor: see mlp__fill_page */
        int s = (MLP__PAGE_MIN + shorter - 1) / shorter;
        while (s > 1 && ((double)w * s * h * s > (double)MLP__PAGE_MAX * MLP__PAGE_MAX || longer * s > 4 * MLP__PAGE_MAX)) s--;
        p->scale = (float)s;
    } else p->scale = 1.0f;
    p->scale = mlp__minf(p->scale, (float)MLP__PAGE_MAX / sqrtf((float)w * (float)h));
    p->scale = mlp__minf(p->scale, 4.0f * (float)MLP__PAGE_MAX / (float)longer);
    if (p->scale > 1.0f) p->scale = floorf(p->scale);
    p->w = (int)ceilf((float)w * p->scale - 1e-3f); p->h = (int)ceilf((float)h * p->scale - 1e-3f);
    if (p->w < 1) p->w = 1;
    if (p->h < 1) p->h = 1;
    if (p->w > 4 * MLP__PAGE_MAX) p->w = 4 * MLP__PAGE_MAX;
    if (p->h > 4 * MLP__PAGE_MAX) p->h = 4 * MLP__PAGE_MAX;
    if ((size_t)p->w * p->h > (size_t)2 * MLP__PAGE_MAX * MLP__PAGE_MAX) { /* rounding up, at worst */
        if (p->w > p->h) p->w = 2 * MLP__PAGE_MAX * MLP__PAGE_MAX / p->h; else p->h = 2 * MLP__PAGE_MAX * MLP__PAGE_MAX / p->w;
    }
    n = p->w * p->h;
    p->buffer = p->gray = (float *)mlp__alloc((size_t)n, 2, sizeof(float));
    p->label = (int *)mlp__alloc((size_t)(p->w + 2) * (p->h + 2), 2, sizeof(int));
    if (!p->gray || !p->label) { mlp__page_free(p); return MLP_ENOMEM; }
    p->ink = p->gray + n;
    p->dist = p->label + (size_t)(p->w + 2) * (p->h + 2);
    mlp__fill_page(p, pixels, w, h, channels);
    if (show) show(user, "picture (gray)", p->gray, p->w, p->h);
    mlp__median3x3(p->ink, p->gray, p->w, p->h);
    tmp = p->gray; p->gray = p->ink; p->ink = tmp;
    if (show) show(user, "denoised (gray)", p->gray, p->w, p->h);
    if ((rc = mlp__remove_background(p, show, user)) != 0) { mlp__page_free(p); return rc; }
    peak = mlp__ink_threshold(p);
    if (peak < MLP__MIN_CONTRAST) { mlp__page_free(p); return mlp__fail(MLP_EFORMAT, "no digit found (the image is blank)"); }
    return MLP_OK;
}

/* The kept components of the page -> out (28 x 28, 0..255): their ink,
   strokes redrawn if far from MNIST's width, framed like MNIST. The page's
   gray buffer is scratch from here on. */
static int mlp__finish_digit(mlp__page *p, const mlp__component *c, int count, const int *kept_box, float *out,
                             mlp_stage_fn show, void *user)
{
    float *v = p->gray, stroke;
    int box[4], bw, bh, longest, i, on_border = 0;
    mlp__digit_ink(v, p, c, kept_box, p->dist);
    if (show) show(user, "digit (kept components)", v, p->w, p->h);
    if (!mlp__ink_box(v, p->w, p->h, box)) return mlp__fail(MLP_EFORMAT, "no digit found (the image is blank)");
    bw = box[2] - box[0] + 1; bh = box[3] - box[1] + 1; longest = bw > bh ? bw : bh;
    stroke = mlp__stroke_width(v, p->w, box[0], box[1], bw, bh, p->dist);
    /* A stroke running off the picture leaves about a stroke width of ink on
       the edge, and a cut digit loses several; a digit that merely touches
       the edge (1% of MNIST's own digits do) leaves less. */
    for (i = 0; i < count; i++) if (c[i].keep) on_border += c[i].on_border;
    if (on_border >= 2 && (float)on_border >= 1.5f * stroke)
        return mlp__fail(MLP_EFORMAT, "the digit is cut by the picture's edge (leave a margin around it)");
    stroke /= (float)longest;
    if (stroke < MLP__STROKE_LOW || stroke > MLP__STROKE_HIGH) {
        enum { SIDE = MLP__CANVAS + 2 * MLP__CANVAS_PAD };
        float canvas[SIDE * SIDE];
        unsigned char scratch[2 * SIDE * SIDE];
        int dw, dh, cw, ch, i;
        mlp__fit(bw, bh, MLP__CANVAS, &dw, &dh);
        cw = dw + 2 * MLP__CANVAS_PAD; ch = dh + 2 * MLP__CANVAS_PAD;
        for (i = 0; i < cw * ch; i++) canvas[i] = 0.0f;
        mlp__resample(canvas + MLP__CANVAS_PAD * cw + MLP__CANVAS_PAD, cw, dw, dh, v, p->w, box[0], box[1], bw, bh);
        mlp__redraw_strokes(canvas, cw, ch, MLP__STROKE_TARGET * (float)MLP__CANVAS, scratch);
        if (show) show(user, "strokes (redrawn at MNIST's width)", canvas, cw, ch);
        if (!mlp__ink_box(canvas, cw, ch, box)) return mlp__fail(MLP_EFORMAT, "no digit found (the strokes vanished when redrawn)");
        return mlp__place_digit(out, canvas, cw, box);
    }
    return mlp__place_digit(out, v, p->w, box);
}

static void mlp__box_to_picture(const mlp__page *p, const int *box, mlp_digit_box *b)
{
    b->x = (int)floorf((float)box[0] / p->scale);
    b->y = (int)floorf((float)box[1] / p->scale);
    b->w = (int)ceilf((float)(box[2] + 1) / p->scale) - b->x;
    b->h = (int)ceilf((float)(box[3] + 1) / p->scale) - b->y;
}

static void mlp__show_input(mlp_stage_fn show, void *user, const float *out)
{
    float v[MLP_DIGIT_SIDE * MLP_DIGIT_SIDE];
    int i;
    if (!show) return;
    for (i = 0; i < MLP_DIGIT_SIDE * MLP_DIGIT_SIDE; i++) v[i] = out[i] / 255.0f;
    show(user, "input (28 x 28)", v, MLP_DIGIT_SIDE, MLP_DIGIT_SIDE);
}

MLPDEF int mlp_digit_preprocess_ex(const float *pixels, int w, int h, int channels, float *out,
                                   mlp_digit_box *where, mlp_stage_fn show, void *user)
{
    mlp__page p;
    mlp__component *c = NULL;
    int count, rc, box[4];
    const char *why;
    if (!out) return mlp__fail(MLP_EARG, "mlp_digit_preprocess: NULL output");
    if ((rc = mlp__page_make(&p, pixels, w, h, channels, show, user)) != 0) return rc;
    if ((count = mlp__find_components(&p, &c)) < 0) { mlp__page_free(&p); return count; }
    if (!mlp__select_digit(c, count, box)) rc = mlp__fail(MLP_EFORMAT, "no digit found (the image is blank)");
    else if ((why = mlp__not_a_digit(&p, c, count, box)) != NULL) rc = mlp__fail(MLP_EFORMAT, "%s", why);
    else rc = mlp__finish_digit(&p, c, count, box, out, show, user);
    if (rc == 0 && where) mlp__box_to_picture(&p, box, where);
    if (rc == 0) mlp__show_input(show, user, out);
    MLP_FREE(c);
    mlp__page_free(&p);
    return rc;
}

MLPDEF int mlp_digit_preprocess(const float *pixels, int w, int h, int channels, float *out)
{
    return mlp_digit_preprocess_ex(pixels, w, h, channels, out, NULL, NULL, NULL);
}

/* ---- numbers: several digits in a row ------------------------------------ */

/* A digit of a number: its box, and the group of components it is cut from
   (several digits share one when touching digits were split apart) */
typedef struct mlp__group { int box[4]; double mass; int source; } mlp__group;

/* Horizontal overlap of two x ranges, as a fraction of the narrower one. */
static float mlp__x_overlap(const int *a, const int *b)
{
    int lo = a[0] > b[0] ? a[0] : b[0], hi = a[2] < b[2] ? a[2] : b[2];
    int narrower = a[2] - a[0] < b[2] - b[0] ? a[2] - a[0] + 1 : b[2] - b[0] + 1;
    return hi < lo ? 0.0f : (float)(hi - lo + 1) / (float)narrower;
}

/* Components -> digits, left to right: pieces standing over one another
   (a broken stroke, a 5's flag, the two halves of a faint 8) merge into one
   digit; specks and marks much smaller than the tallest digit are dropped.
   group_of[i] is component i's digit or -1. Returns the number of digits. */
static int mlp__group_digits(const mlp__component *c, int count, int *group_of, mlp__group *g, int max_groups)
{
    int i, j, n = 0, tallest = 0, heaviest = -1, merged = 1;
    for (i = 0; i < count; i++) if (heaviest < 0 || c[i].mass > c[heaviest].mass) heaviest = i;
    for (i = 0; i < count; i++) {
        int b[4];
        group_of[i] = -1;
        if (c[i].area < 12 || c[i].mass < 0.02 * c[heaviest].mass) continue;
        b[0] = c[i].x0; b[1] = c[i].y0; b[2] = c[i].x1; b[3] = c[i].y1;
        for (j = 0; j < n; j++) if (mlp__x_overlap(b, g[j].box) >= 0.5f) break;
        if (j == n) {
            if (n == max_groups) continue; /* too many candidates: the rest are dropped by size below anyway */
            g[n].box[0] = b[0]; g[n].box[1] = b[1]; g[n].box[2] = b[2]; g[n].box[3] = b[3]; g[n].mass = 0.0; n++;
        }
        group_of[i] = j;
        g[j].mass += c[i].mass;
        if (b[0] < g[j].box[0]) g[j].box[0] = b[0];
        if (b[1] < g[j].box[1]) g[j].box[1] = b[1];
        if (b[2] > g[j].box[2]) g[j].box[2] = b[2];
        if (b[3] > g[j].box[3]) g[j].box[3] = b[3];
    }
    while (merged) { /* grown groups may now overlap each other */
        merged = 0;
        for (i = 0; i < n && !merged; i++)
            for (j = i + 1; j < n && !merged; j++) {
                int k;
                if (mlp__x_overlap(g[i].box, g[j].box) < 0.5f) continue;
                for (k = 0; k < count; k++) if (group_of[k] == j) group_of[k] = i; else if (group_of[k] > j) group_of[k]--;
                if (g[j].box[0] < g[i].box[0]) g[i].box[0] = g[j].box[0];
                if (g[j].box[1] < g[i].box[1]) g[i].box[1] = g[j].box[1];
                if (g[j].box[2] > g[i].box[2]) g[i].box[2] = g[j].box[2];
                if (g[j].box[3] > g[i].box[3]) g[i].box[3] = g[j].box[3];
                g[i].mass += g[j].mass;
                for (k = j; k + 1 < n; k++) g[k] = g[k + 1];
                n--; merged = 1;
            }
    }
    for (i = 0; i < n; i++) if (g[i].box[3] - g[i].box[1] + 1 > tallest) tallest = g[i].box[3] - g[i].box[1] + 1;
    for (i = 0; i < n;) {
        if ((g[i].box[3] - g[i].box[1] + 1) * 5 >= tallest * 2) { i++; continue; }
        for (j = 0; j < count; j++) if (group_of[j] == i) group_of[j] = -1; else if (group_of[j] > i) group_of[j]--;
        for (j = i; j + 1 < n; j++) g[j] = g[j + 1];
        n--;
    }
    for (i = 1; i < n; i++) /* left to right */
        for (j = i; j > 0 && g[j].box[0] < g[j - 1].box[0]; j--) {
            mlp__group t = g[j];
            int k;
            g[j] = g[j - 1]; g[j - 1] = t;
            for (k = 0; k < count; k++) if (group_of[k] == j) group_of[k] = j - 1; else if (group_of[k] == j - 1) group_of[k] = j;
        }
    for (i = 0; i < n; i++) g[i].source = i;
    return n;
}

/* The ink of group `source` in column x of its box */
static double mlp__column_ink(const mlp__page *p, const int *group_of, int source, const int *box, int x)
{
    double ink = 0.0;
    int y;
    for (y = box[1]; y <= box[3]; y++) {
        int id = p->label[y * p->w + x];
        if (id >= 0 && group_of[id] == source) ink += p->ink[y * p->w + x];
    }
    return ink;
}

/* The column of least ink of group `source` between x0 and x1, if it is a
   neck (less than half the box's mean column ink: where two digits touch,
   not the middle of a wide 0 or 2); -1 if there is none. */
static int mlp__neck(const mlp__page *p, const int *group_of, int source, const int *box, int x0, int x1)
{
    int x, best = -1;
    double least = 0.0, mean = 0.0;
    for (x = box[0]; x <= box[2]; x++) mean += mlp__column_ink(p, group_of, source, box, x);
    mean /= (double)(box[2] - box[0] + 1);
    for (x = x0 > box[0] ? x0 : box[0]; x <= x1 && x <= box[2]; x++) {
        double ink = mlp__column_ink(p, group_of, source, box, x);
        if (best < 0 || ink < least) { least = ink; best = x; }
    }
    return best >= 0 && least < 0.5 * mean ? best : -1;
}

/* Fixes: digits written so close that they touch, which made one wide
   component. A group more than 1.5 times as wide as the picture's typical
   digit (with three or more groups their median width, but at least half
   the height; else 0.7 of the height) and at least 1.25 times as wide as
   tall (a wide 5 or 2 alone is not) is cut into round(width / typical)
   digits, each cut at the column of least ink within a quarter digit of
   where an even split would put it, provided every such column is a neck.
   Returns the new number of digits (at most max_groups). */
static int mlp__split_touching(const mlp__page *p, const int *group_of, mlp__group *g, int n, int max_groups)
{
    int widths[MLP_MAX_DIGITS + 1], cuts[MLP_MAX_DIGITS + 1], m = 0, i, j, k;
    float typical;
    mlp__group whole;
    for (i = 0; i < n; i++) widths[m++] = g[i].box[2] - g[i].box[0] + 1;
    for (i = 1; i < m; i++) for (j = i; j > 0 && widths[j] < widths[j - 1]; j--) { k = widths[j]; widths[j] = widths[j - 1]; widths[j - 1] = k; }
    for (i = n - 1; i >= 0; i--) {
        int bw = g[i].box[2] - g[i].box[0] + 1, bh = g[i].box[3] - g[i].box[1] + 1, parts, left;
        typical = n > 2 ? mlp__maxf((float)widths[m / 2], 0.5f * (float)bh) : 0.7f * (float)bh;
        if ((float)bw <= 1.5f * typical || 4 * bw <= 5 * bh) continue;
        parts = (int)((float)bw / typical + 0.5f);
        if (parts > max_groups - n + 1) parts = max_groups - n + 1;
        if (parts < 2) continue;
        whole = g[i];
        for (k = 0; k + 1 < parts; k++) { /* every cut at a neck, or none */
            int even = whole.box[0] + (int)((float)bw * (float)(k + 1) / (float)parts), reach = bw / parts / 4;
            if ((cuts[k] = mlp__neck(p, group_of, whole.source, whole.box, even - reach, even + reach)) < 0) break;
        }
        if (k + 1 < parts) continue;
        for (j = n - 1; j > i; j--) g[j + parts - 1] = g[j]; /* room for the new digits */
        left = whole.box[0];
        for (k = 0; k < parts; k++) {
            g[i + k] = whole;
            g[i + k].box[0] = left; g[i + k].box[2] = k + 1 < parts ? cuts[k] : whole.box[2];
            left = g[i + k].box[2] + 1;
        }
        n += parts - 1;
    }
    return n;
}

MLPDEF int mlp_number_preprocess(const float *pixels, int w, int h, int channels, float *out,
                                 mlp_digit_box *boxes, int max_digits, mlp_stage_fn show, void *user)
{
    mlp__page p;
    mlp__component *c = NULL;
    mlp__group *g = NULL;
    int *group_of = NULL, count, n = 0, i, k, rc;
    if (!out || max_digits < 1 || max_digits > MLP_MAX_DIGITS)
        return mlp__fail(MLP_EARG, "mlp_number_preprocess: NULL output or max_digits outside 1..%d", MLP_MAX_DIGITS);
    if ((rc = mlp__page_make(&p, pixels, w, h, channels, show, user)) != 0) return rc;
    if ((count = mlp__find_components(&p, &c)) < 0) { mlp__page_free(&p); return count; }
    group_of = (int *)mlp__alloc((size_t)(count ? count : 1), 1, sizeof(int));
    g = (mlp__group *)mlp__alloc(MLP_MAX_DIGITS + 1, 1, sizeof(mlp__group));
    if (!group_of || !g) rc = MLP_ENOMEM;
    else if ((n = mlp__group_digits(c, count, group_of, g, MLP_MAX_DIGITS + 1)) == 0)
        rc = mlp__fail(MLP_EFORMAT, "no digit found (the image is blank)");
    else n = mlp__split_touching(&p, group_of, g, n, MLP_MAX_DIGITS + 1);
    if (rc == 0 && n > max_digits) rc = mlp__fail(MLP_EFORMAT, "%d digits found, more than the %d allowed", n, max_digits);
    for (k = 0; rc == 0 && k < n; k++) {
        const char *why;
        for (i = 0; i < count; i++) c[i].keep = group_of[i] == g[k].source;
        if ((why = mlp__not_a_digit(&p, c, count, g[k].box)) != NULL) {
            rc = mlp__fail(MLP_EFORMAT, "digit %d of %d: %s", k + 1, n, why);
            break;
        }
        if ((rc = mlp__finish_digit(&p, c, count, g[k].box, out + (size_t)k * MLP_DIGIT_SIDE * MLP_DIGIT_SIDE, show, user)) != 0) break;
        if (boxes) mlp__box_to_picture(&p, g[k].box, &boxes[k]);
        mlp__show_input(show, user, out + (size_t)k * MLP_DIGIT_SIDE * MLP_DIGIT_SIDE);
    }
    MLP_FREE(group_of);
    MLP_FREE(g);
    MLP_FREE(c);
    mlp__page_free(&p);
    return rc == 0 ? n : rc;
}

MLPDEF int mlp_normalize_input(const mlp_net *net, const float *raw, float *x)
{
    int i, n;
    if (!net || !raw || !x) return mlp__fail(MLP_EARG, "mlp_normalize_input: NULL argument");
    n = mlp_input_width(net);
    for (i = 0; i < n; i++) x[i] = raw[i] * net->input_scale + net->input_offset;
    if (net->col_scale)
        for (i = 0; i < n; i++) x[i] = x[i] * net->col_scale[i] + net->col_offset[i];
    return MLP_OK;
}


/* ---- data augmentation --------------------------------------------------- */

/* bilinear sample of a w x h image at (x, y), 0 outside */
static float mlp__sample(const float *img, int w, int h, float x, float y)
{
    int x0 = (int)floorf(x), y0 = (int)floorf(y);
    float tx = x - (float)x0, ty = y - (float)y0, v = 0.0f;
    if (x0 >= 0 && y0 >= 0 && x0 < w && y0 < h) v += (1 - tx) * (1 - ty) * img[y0 * w + x0];
    if (x0 + 1 >= 0 && y0 >= 0 && x0 + 1 < w && y0 < h) v += tx * (1 - ty) * img[y0 * w + x0 + 1];
    if (x0 >= 0 && y0 + 1 >= 0 && x0 < w && y0 + 1 < h) v += (1 - tx) * ty * img[(y0 + 1) * w + x0];
    if (x0 + 1 >= 0 && y0 + 1 >= 0 && x0 + 1 < w && y0 + 1 < h) v += tx * ty * img[(y0 + 1) * w + x0 + 1];
    return v;
}


static float mlp__uniform_pm(mlp_rng *rng, float range) { return range * (2.0f * mlp_rng_float(rng) - 1.0f); }

/* dst = the max (dilate) or min (erode) of each pixel and its four
   neighbours, 0 outside: one pixel of pen width more or less */
static void mlp__plus_morph(float *dst, const float *src, int w, int h, int dilate)
{
    int x, y;
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            float v = src[y * w + x], n[4];
            int i;
            n[0] = x > 0 ? src[y * w + x - 1] : 0.0f;
            n[1] = x + 1 < w ? src[y * w + x + 1] : 0.0f;
            n[2] = y > 0 ? src[(y - 1) * w + x] : 0.0f;
            n[3] = y + 1 < h ? src[(y + 1) * w + x] : 0.0f;
            for (i = 0; i < 4; i++) v = dilate ? mlp__maxf(v, n[i]) : mlp__minf(v, n[i]);
            dst[y * w + x] = v;
        }
}

/* Strokes thicker or thinner by |amount| pixels (sign: thicker), whole
   steps of the plus-shaped pen, then the fraction blended in. img and tmp
   hold w h floats. */
static void mlp__change_thickness(float *img, float *tmp, int w, int h, float amount)
{
    int dilate = amount > 0.0f, i;
    float left = fabsf(amount);
    while (left > 0.0f) {
        float part = mlp__minf(left, 1.0f);
        mlp__plus_morph(tmp, img, w, h, dilate);
        for (i = 0; i < w * h; i++) img[i] += part * (tmp[i] - img[i]);
        left -= 1.0f;
    }
}

/* Gaussian blur that keeps the image's peak (preprocessing stretches the
   ink to full scale again) */
static void mlp__blur_keep_peak(const mlp__kernels *k, float *img, float *tmp, int w, int h, float sigma)
{
    float before = 0.0f, after = 0.0f;
    int i;
    for (i = 0; i < w * h; i++) before = mlp__maxf(before, img[i]);
    k->blur(img, tmp, w, h, sigma);
    for (i = 0; i < w * h; i++) after = mlp__maxf(after, img[i]);
    if (after > 0.0f) for (i = 0; i < w * h; i++) img[i] *= before / after;
}

/* one to three specks of one or two pixels, of random strength */
static void mlp__add_specks(float *img, int w, int h, mlp_rng *rng)
{
    int n = 1 + (int)mlp_rng_below(rng, 3), k;
    for (k = 0; k < n; k++) {
        int x = (int)mlp_rng_below(rng, (uint32_t)w), y = (int)mlp_rng_below(rng, (uint32_t)h), wide = (int)mlp_rng_below(rng, 2);
        float v = 0.3f + 0.7f * mlp_rng_float(rng);
        img[y * w + x] = mlp__maxf(img[y * w + x], v);
        if (wide && x + 1 < w) img[y * w + x + 1] = mlp__maxf(img[y * w + x + 1], v);
    }
}

/* One image: dst(p) = src(A^-1 (p - c) + c - t + d(p)), d the elastic field,
   then strokes, blur and specks.
   scratch holds 3 w h floats. */
static void mlp__augment_image(const mlp__kernels *k, const float *src, float *dst, int w, int h, const mlp_augment *a,
                               mlp_rng *rng, float *scratch)
{
    float *dx = scratch, *dy = scratch + w * h, *tmp = scratch + 2 * w * h;
    float angle = mlp__uniform_pm(rng, a->rotate) * 3.14159265f / 180.0f;
    float zoom = 1.0f + mlp__uniform_pm(rng, a->scale), shear = mlp__uniform_pm(rng, a->shear);
    float tx = mlp__uniform_pm(rng, a->shift), ty = mlp__uniform_pm(rng, a->shift);
    float cs = cosf(angle) / zoom, sn = sinf(angle) / zoom, cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
    int x, y, elastic = a->elastic_alpha > 0.0f && a->elastic_sigma > 0.0f;
    if (elastic) {
        for (x = 0; x < w * h; x++) { dx[x] = mlp__uniform_pm(rng, 1.0f); dy[x] = mlp__uniform_pm(rng, 1.0f); }
        k->blur(dx, tmp, w, h, a->elastic_sigma);
        k->blur(dy, tmp, w, h, a->elastic_sigma);
    }
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            /* inverse map: undo the shift, then rotation/zoom, then shear */
            float px = (float)x - cx - tx, py = (float)y - cy - ty;
            float sx = cs * px + sn * py, sy = -sn * px + cs * py;
            sx -= shear * sy;
            if (elastic) { sx += a->elastic_alpha * dx[y * w + x]; sy += a->elastic_alpha * dy[y * w + x]; }
            dst[y * w + x] = mlp__sample(src, w, h, sx + cx, sy + cy);
        }
    /* drawn after the geometry, so the ranges above keep their meaning and
       images without these options come out exactly as before */
    if (a->thickness > 0.0f) mlp__change_thickness(dst, tmp, w, h, mlp__uniform_pm(rng, a->thickness));
    if (a->blur > 0.0f) {
        float sigma = a->blur * mlp_rng_float(rng);
        if (sigma > 0.2f) mlp__blur_keep_peak(k, dst, tmp, w, h, sigma);
    }
    if (a->specks > 0.0f && mlp_rng_float(rng) < a->specks) mlp__add_specks(dst, w, h, rng);
}

typedef struct mlp__augment_job {
    const mlp_dataset *src;
    const mlp_augment *aug;
    uint64_t seed;
    int epoch, first;       /* first: the sample number of src's row 0 */
    const mlp__kernels *k;
    float *out, *scratch;   /* scratch: 3 w h floats per thread */
} mlp__augment_job;

static void mlp__augment_task(void *arg, int t, int n)
{
    const mlp__augment_job *j = (const mlp__augment_job *)arg;
    int i, w = j->src->image_w, h = j->src->image_h;
    int begin = (int)((long)j->src->n * t / n), end = (int)((long)j->src->n * (t + 1) / n);
    for (i = begin; i < end; i++) {
        mlp_rng rng;
        mlp_rng_seed(&rng, j->seed ^ 0x6175676dULL, ((uint64_t)j->epoch << 32) | (uint32_t)(j->first + i));
        mlp__augment_image(j->k, j->src->x + (size_t)i * j->src->dim, j->out + (size_t)i * j->src->dim, w, h,
                           j->aug, &rng, j->scratch + (size_t)t * 3 * w * h);
    }
}

MLPDEF int mlp_augment_dataset(mlp_net *net, const mlp_dataset *src, const mlp_augment *aug,
                               uint64_t seed, int epoch, float *out)
{
    mlp__augment_job j;
    int threads = net ? net->engine->n_threads : 1;
    if (!src || !aug || !out || !src->x) return mlp__fail(MLP_EARG, "mlp_augment_dataset: NULL argument");
    if (src->image_w < 1 || src->image_h < 1 || src->image_w * src->image_h != src->dim)
        return mlp__fail(MLP_EARG, "mlp_augment_dataset: the data set holds no images");
    if (!(aug->shift >= 0.0f) || !(aug->rotate >= 0.0f) || !(aug->scale >= 0.0f && aug->scale < 1.0f) ||
        !(aug->shear >= 0.0f) || !(aug->elastic_alpha >= 0.0f) || !(aug->elastic_sigma >= 0.0f && aug->elastic_sigma <= 10.0f) ||
        !(aug->thickness >= 0.0f && aug->thickness <= 3.0f) || !(aug->blur >= 0.0f && aug->blur <= 10.0f) ||
        !(aug->specks >= 0.0f && aug->specks <= 1.0f))
        return mlp__fail(MLP_EARG, "augmentation ranges must be >= 0 (scale < 1, elastic sigma and blur <= 10, "
                                   "thickness <= 3, specks <= 1)");
    j.src = src; j.aug = aug; j.seed = seed; j.epoch = epoch; j.out = out;
    j.first = src->shard_total > 0 && src->shard_first > 0 && src->shard_first <= src->shard_total - src->n ? src->shard_first : 0;
    j.k = net ? net->engine->k : mlp__kernels_for(mlp_isa_best());
    j.scratch = (float *)mlp__alloc((size_t)threads * 3, (size_t)src->dim, sizeof(float));
    if (!j.scratch) return MLP_ENOMEM;
    mlp__run(net ? net->engine : NULL, 1, mlp__augment_task, &j);
    MLP_FREE(j.scratch);
    return MLP_OK;
}

#endif /* MLP_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the mlp.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
