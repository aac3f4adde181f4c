/* Stable Diffusion subcommands of the visgen tool (sd_cmds.c). Each takes
 * argc/argv starting at the subcommand name and returns the exit status. */
#ifndef VG_TOOLS_VISGEN_SD_CMDS_H
#define VG_TOOLS_VISGEN_SD_CMDS_H

extern const char *const vg_sd_usage_text;

int vg_cmd_info(int argc, char **argv);
int vg_cmd_tokenize(int argc, char **argv);
int vg_cmd_forward(int argc, char **argv);
int vg_cmd_img2img(int argc, char **argv);

#endif
