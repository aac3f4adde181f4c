/* Optical-flow and temporal-consistency subcommands of the visgen tool
 * (flow_cmd.c, metrics_cmd.c; what they share in temporal_cmds.c). Each
 * takes argc/argv starting at the subcommand name and returns the exit
 * status (2 = usage error). */
#ifndef VG_TOOLS_VISGEN_TEMPORAL_CMDS_H
#define VG_TOOLS_VISGEN_TEMPORAL_CMDS_H

extern const char *const vg_temporal_usage_text;

int vg_cmd_flow(int argc, char **argv);
int vg_cmd_metrics(int argc, char **argv);

/* Prints "visgen: " + printf(@fmt, @arg) and the usage text on stderr;
 * returns 2, the exit status of a usage error. */
int vg_temporal_usage(const char *fmt, const char *arg);

/* Flow from @a to @b (w x h gray 0..255, rows w apart) with the preset,
 * into @u, @v (w * h each). 0, or -1 with a message on stderr. */
int vg_cli_flow(const float *a, const float *b, int w, int h, int preset, float *u, float *v);

/* The same from the first frames of the files @a and @b (same size, else an
 * error): *@u, *@v malloc'ed here (caller frees), size in *@w, *@h. */
int vg_cli_flow_files(const char *a, const char *b, int preset, float **u, float **v,
                      int *w, int *h);

#endif
