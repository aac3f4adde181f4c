/*
 * SVG line charts; see svgplot.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tools/visgen/svgplot.h"

/* matplotlib's tab10: distinct, and readable on white. */
static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };
#define N_COLORS (int)(sizeof(palette) / sizeof(palette[0]))

enum {
    WIDTH   = 860,
    LEFT    = 84,   /* room for the y tick labels */
    RIGHT   = 24,
    TOP     = 68,   /* title and one row of legend */
    LEGEND_ROW = 18,
    TITLE_H = 30,   /* panel title, above its plot area */
    PANEL_H = 190,  /* plot area of one panel */
    TICKS_H = 34,   /* x tick labels, below it */
    BOTTOM  = 30,   /* x label */
    MARKERS_UP_TO = 60, /* points per series drawn as dots too */
};

static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Smallest 1, 2, 2.5 or 5 x 10^k >= @x (x > 0). */
static double nice_step(double x)
{
    static const double m[] = { 1, 2, 2.5, 5, 10 };
    double p = pow(10, floor(log10(x)));

    for (int i = 0; i < 5; i++)
        if (m[i] * p >= x * (1 - 1e-9))
            return m[i] * p;
    return 10 * p;
}

static double panel_max(const VgpPanel *p)
{
    double mx = 0;

    for (int l = 0; l < p->n_lines; l++)
        for (int i = 0; i < p->lines[l].n; i++)
            if (isfinite(p->lines[l].y[i]) && p->lines[l].y[i] > mx)
                mx = p->lines[l].y[i];
    return mx;
}

typedef struct Axes {
    double x0, x1, y1;     /* data range: x0..x1, 0..y1 */
    double ystep;          /* y1 is a multiple of it */
    double px, py, pw, ph; /* plot area in SVG units */
} Axes;

static double sx(const Axes *a, double x) { return a->px + (x - a->x0) / (a->x1 - a->x0) * a->pw; }
static double sy(const Axes *a, double y) { return a->py + a->ph - y / a->y1 * a->ph; }

static void draw_line(FILE *f, const Axes *a, int x0, const VgpLine *l)
{
    const char *col = palette[(l->color % N_COLORS + N_COLORS) % N_COLORS];
    int i = 0;

    /* One polyline per run of finite values, so NaN frames leave a gap. */
    while (i < l->n) {
        int j = i;
        while (i < l->n && !isfinite(l->y[i]))
            i++;
        for (j = i; j < l->n && isfinite(l->y[j]); j++)
            ;
        if (j - i >= 2) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s points=\"", col,
                    l->dashed ? " stroke-dasharray=\"6 4\"" : "");
            for (int k = i; k < j; k++)
                fprintf(f, "%s%.2f,%.2f", k > i ? " " : "", sx(a, x0 + k), sy(a, l->y[k]));
            fputs("\"/>\n", f);
        }
        if (j - i == 1 || (l->n <= MARKERS_UP_TO && !l->dashed))
            for (int k = i; k < j; k++)
                fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.6\" fill=\"%s\"/>\n",
                        sx(a, x0 + k), sy(a, l->y[k]), col);
        i = j;
    }
}

static void draw_panel(FILE *f, const VgpChart *c, const VgpPanel *p, const Axes *a,
                       double xstep)
{
    int nt = (int)lround(a->y1 / a->ystep);

    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" font-weight=\"bold\">", a->px,
            a->py - 12);
    put_text(f, p->title);
    fputs("</text>\n", f);
    for (int i = 0; i <= nt; i++) {
        double y = sy(a, i * a->ystep);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                a->px, y, a->px + a->pw, y, i ? "#e4e4e4" : "#000");
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%g</text>\n",
                a->px - 8, y + 4, i * a->ystep);
    }
    for (double x = ceil(a->x0 / xstep) * xstep; x <= a->x1 + 1e-9; x += xstep) {
        double X = sx(a, x), Y = a->py + a->ph;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n",
                X, a->py, X, Y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                X, Y, X, Y + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%g</text>\n",
                X, Y + 19, x);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
            a->px, a->py, a->px, a->py + a->ph);
    for (int l = 0; l < p->n_lines; l++)
        draw_line(f, a, c->x0, &p->lines[l]);
}

/* Lays the legend out in rows under the title; draws it unless @f is NULL.
 * Returns the number of rows. */
static int draw_legend(FILE *f, const VgpChart *c)
{
    double x = LEFT, y = 50;
    int rows = 1;

    for (int i = 0; i < c->n_legend; i++) {
        /* Sans-serif at 13 px averages ~7.5 px a character. */
        double wi = 28 + 7.5 * strlen(c->legend[i]) + 24;
        if (i && x + wi > WIDTH - RIGHT) {
            x = LEFT;
            y += LEGEND_ROW;
            rows++;
        }
        if (f) {
            fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                    "stroke-width=\"3\"/>\n", x, y - 4, x + 22, y - 4, palette[i % N_COLORS]);
            fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\">", x + 28, y);
            put_text(f, c->legend[i]);
            fputs("</text>\n", f);
        }
        x += wi;
    }
    return rows;
}

int vgp_write_svg(const char *path, const VgpChart *c)
{
    int top = TOP + LEGEND_ROW * (draw_legend(NULL, c) - 1), n = 1, err;
    int height = top + c->n_panels * (TITLE_H + PANEL_H + TICKS_H) + BOTTOM;
    double xstep;
    FILE *f;

    for (int p = 0; p < c->n_panels; p++)
        for (int l = 0; l < c->panels[p].n_lines; l++)
            n = c->panels[p].lines[l].n > n ? c->panels[p].lines[l].n : n;
    if (!(f = fopen(path, "w"))) {
        fprintf(stderr, "visgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            WIDTH, height, WIDTH, height);
    fprintf(f, "<text x=\"%d\" y=\"26\" font-size=\"17\" font-weight=\"bold\">", LEFT);
    put_text(f, c->title);
    fputs("</text>\n", f);
    draw_legend(f, c);
    xstep = n > 1 ? fmax(1, nice_step((n - 1) / 10.0)) : 1;
    for (int p = 0; p < c->n_panels; p++) {
        /* About 5 y ticks, the top one at or above the largest value. */
        double mx = panel_max(&c->panels[p]), step = nice_step(mx > 0 ? mx / 5 : 0.2);
        Axes a = {
            .x0 = c->x0, .x1 = c->x0 + (n > 1 ? n - 1 : 1),
            .y1 = step * fmax(1, ceil(mx / step - 1e-9)), .ystep = step,
            .px = LEFT, .py = top + TITLE_H + p * (TITLE_H + PANEL_H + TICKS_H),
            .pw = WIDTH - LEFT - RIGHT, .ph = PANEL_H,
        };
        draw_panel(f, c, &c->panels[p], &a, xstep);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">",
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0, height - 12);
    put_text(f, c->xlabel);
    fputs("</text>\n</svg>\n", f);
    err = ferror(f);
    err |= fclose(f) != 0;
    if (err) {
        fprintf(stderr, "visgen: %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
