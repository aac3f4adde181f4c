/*
 * Line charts as SVG, written with plain fprintf (no plotting library to
 * depend on): stacked panels sharing one x axis, light grid, ticks at
 * 1/2/2.5/5 x 10^k steps, a polyline per series, one legend of colours.
 */
#ifndef VG_TOOLS_VISGEN_SVGPLOT_H
#define VG_TOOLS_VISGEN_SVGPLOT_H

typedef struct VgpLine {
    const double *y;    /* y[i] is plotted at x = x0 + i; NaN leaves a gap */
    int n;
    int color;          /* palette index, the same one the legend uses */
    int dashed;
} VgpLine;

typedef struct VgpPanel {
    const char *title;  /* what the y axis measures */
    const VgpLine *lines;
    int n_lines;
} VgpPanel;

typedef struct VgpChart {
    const char *title;
    const char *xlabel;
    int x0;
    const VgpPanel *panels;
    int n_panels;
    const char *const *legend;  /* legend[i]: label of colour i */
    int n_legend;
} VgpChart;

/* Writes @c (every pointer read only, caller-owned) to @path. 0, or -1 with
 * one line "visgen: PATH: why" on stderr. */
int vgp_write_svg(const char *path, const VgpChart *c);

#endif
