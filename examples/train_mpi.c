/* train_mpi.c - train_mnist over several processes with MPI (data-parallel
   training): the same flags, --batch being the global batch, the same log
   and the same model, up to the order in which gradients are summed.

   mpicc -O2 -o train_mpi examples/train_mpi.c -lm
   mpirun -np 2 ./train_mpi --threads 1 --log log.csv       one machine
   mpirun --host a,b ./train_mpi --log log.csv              two (each with
                                                            the data at --data)

   Every process loads the training files and keeps its shard of them
   (mlp_dataset_shard). All draw the same shuffle, so the global batches are
   those of one process; each computes the gradient of the rows of a batch
   that its shard holds, one MPI_Allreduce per batch sums the gradients
   (with the batch's loss, accuracy and batchnorm statistics: the
   mlp_train_config.reduce call), and every process takes the same step.
   Rank 0 prints, logs and saves. Every process evaluates (the same weights
   give the same numbers), so early stopping decides alike everywhere
   without a message.

   Ctrl-C: mpirun ends the whole job at once (Open MPI's way; files are
   only ever replaced whole, so the last checkpoint stands). To stop after
   the current batch with a checkpoint, as Ctrl-C does train_mnist, send
   mpirun SIGUSR1 (kill -USR1 PID), which it passes on to every process.

   A process that fails or dies does not leave the others waiting: MPI
   errors come back as codes (MPI_ERRORS_RETURN) and end the run with a
   message, a process that fails on its own calls MPI_Abort, and a
   watchdog ends any process that waits longer than --mpi-timeout seconds
   (default 300) for the others. Flags of this program alone:
     --mpi-timeout S   that watchdog (seconds, 1..86400)
     --kill-rank R,N   rank R kills itself (SIGKILL) at its N-th sum: the
                       death of a process, for tests
     --stall-rank R,N  rank R stops answering (sleeps) at its N-th sum: a
                       hung process or host, for tests
     --interrupt-rank R  only rank R acts on --interrupt-after: one process
                       interrupted, for tests
*/
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../mlp.h" /* the declarations; train_mnist.c compiles the implementation */

#define TRAIN_MNIST_PROCESSES
static char program[40] = "train_mpi";
static int rank, n_ranks = 1;
static unsigned timeout_seconds = 300;
static int kill_rank = -1, stall; /* stall: the rank sleeps instead */
static int interrupt_rank = -1;
static int together; /* every process is stopping at the same point */
static long kill_at, sums_done, gradient_sums;
static double sum_seconds;  /* time spent in the gradients' MPI_Allreduce */
static size_t sum_floats;
static char timeout_message[160];

static void on_timeout(int sig)
{
    ssize_t ignored = write(2, timeout_message, strlen(timeout_message)); /* async-signal-safe */
    (void)ignored; (void)sig;
    _Exit(1);
}

/* MPI's own messages name the failure: "MPI_ERR_PROC_FAILED", ... */
static int mpi_failed(int err, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (err == MPI_SUCCESS) return 0;
    MPI_Error_string(err, text, &len);
    fprintf(stderr, "%s: %s failed: %s (did another process die?)\n", program, what, text);
    return 1;
}

/* mlp_train_config.reduce: the sum over all processes, in place, under the watchdog */
static int sum_over_ranks(void *user, float *values, size_t n)
{
    double t0;
    int err;
    (void)user;
    if (++sums_done == kill_at && rank == kill_rank) {
        if (!stall) raise(SIGKILL);
        for (;;) pause();
    }
    if (n > (size_t)0x7fffffff) return -1;
    t0 = MPI_Wtime();
    alarm(timeout_seconds);
    err = MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    alarm(0);
    if (n > 1) { /* a gradient sum, not the epoch's start */
        sum_seconds += MPI_Wtime() - t0;
        sum_floats = n;
        gradient_sums++;
    }
    return mpi_failed(err, "MPI_Allreduce");
}

static int anyone_interrupted(int here)
{
    int any = here;
    alarm(timeout_seconds);
    if (mpi_failed(MPI_Allreduce(&here, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce")) _Exit(1);
    alarm(0);
    return any;
}

/* Takes this program's own flags out of argv, leaving train_mnist's. */
static void own_flags(int *argc, char **argv)
{
    int i, k = 1;
    for (i = 1; i < *argc; i++) {
        const char *v = i + 1 < *argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--interrupt-rank") && v) {
            interrupt_rank = atoi(v);
            i++;
        } else if (!strcmp(argv[i], "--mpi-timeout") || !strcmp(argv[i], "--kill-rank") || !strcmp(argv[i], "--stall-rank")) {
            char *end;
            long a = v ? strtol(v, &end, 10) : 0;
            if (v && !strcmp(argv[i], "--mpi-timeout") && !*end && a >= 1 && a <= 86400) timeout_seconds = (unsigned)a;
            else if (v && strcmp(argv[i], "--mpi-timeout") && *end == ',' && a >= 0 && (kill_at = strtol(end + 1, &end, 10)) >= 1 && !*end)
                kill_rank = (int)a, stall = !strcmp(argv[i], "--stall-rank");
            else {
                fprintf(stderr, "%s: %s %s: expected seconds 1..86400 (--mpi-timeout) or R,N\n", program, argv[i], v ? v : "");
                MPI_Finalize();
                exit(2);
            }
            i++;
        } else argv[k++] = argv[i];
    }
    *argc = k;
    argv[k] = NULL;
    if (interrupt_rank >= 0 && rank != interrupt_rank) /* the others drop --interrupt-after */
        for (i = k = 1; i < *argc; i++) {
            if (!strcmp(argv[i], "--interrupt-after") && i + 1 < *argc) i++;
            else argv[k++] = argv[i];
        }
    *argc = k;
    argv[k] = NULL;
}

static void on_sigint(int sig); /* train_mnist.c's: stop after this batch */

static void start_processes(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    if (n_ranks > 1) snprintf(program, sizeof program, "train_mpi rank %d", rank);
    own_flags(argc, *argv);
    snprintf(timeout_message, sizeof timeout_message, "%s: no answer from the other processes for %u s "
             "(did one die?); giving up\n", program, timeout_seconds);
    signal(SIGALRM, on_timeout);
    signal(SIGUSR1, on_sigint);
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) exit(1); /* rank 0 speaks for all */
}

static int end_processes(int rc)
{
    if (rank == 0 && gradient_sums > 0)
        printf("%d process%s; gradient sums: %ld, %.3f ms each on average, %lu bytes each\n", n_ranks,
               n_ranks > 1 ? "es" : "", gradient_sums, 1e3 * sum_seconds / (double)gradient_sums,
               (unsigned long)(sum_floats * sizeof(float)));
    fflush(stdout);
    if (rc != 0 && n_ranks > 1) {
        if (!together) MPI_Abort(MPI_COMM_WORLD, rc); /* the others may be waiting for this one */
        alarm(timeout_seconds); /* for rank 0 to finish its files */
        if (mpi_failed(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier")) _Exit(rc);
        alarm(0);
    }
    MPI_Finalize();
    return rc;
}

static void all_stopping(void) { together = 1; }

static int writes_files(void) { return rank == 0; }

static int take_share(const mlp_dataset *all, mlp_dataset *share)
{
    return mlp_dataset_shard(all, share, rank, n_ranks);
}

static void join_training(mlp_train_config *cfg)
{
    cfg->reduce = sum_over_ranks;
    cfg->reduce_user = NULL;
}

#include "train_mnist.c"
