import { grey } from '@mui/material/colors';
import { defaultDarkTheme, defaultLightTheme, type RaThemeOptions } from 'react-admin';

/**
 * react-admin's themes with colours that pass WCAG AA contrast (4.5:1 for text) on every
 * surface they are drawn on; axe found 28+ serious colour-contrast violations with the defaults
 * (admin/test/accessibility.test.ts scans every page, light and dark, 375 and 1280 px):
 * - the app bar is white on secondary #2196f3 (3.1:1): secondary is #1565c0 (5.8:1);
 * - primary text buttons (#1976d2) on the page and the form toolbar (#e0e0e0) reach 4.4 and
 *   3.7:1: primary is #1565c0 and the toolbar grey[100] (5.3:1);
 * - the red Delete button on the toolbar (#d32f2f on #e0e0e0, 4.0:1) is #c62828 on grey[100]
 *   (5.2:1); in dark mode MUI's #f44336 on grey[800] (3.2:1) is #ef9a9a (4.7:1);
 * - an empty list's message is drawn in text.disabled (2.3:1 on white): it is text.secondary
 *   (5.7:1 light, 6.9:1 dark);
 * - tooltips are an opaque grey[900] behind white text (15:1), not MUI's translucent grey.
 */
const blue = { light: '#5e92f3', main: '#1565c0', dark: '#003c8f', contrastText: '#fff' };

/** What both modes share: readable empty-list messages and tooltips. */
const readable = {
  RaEmpty: {
    styleOverrides: {
      root: ({ theme }: { theme: { palette: { text: { secondary: string } } } }) => ({
        '& .RaEmpty-message': { color: theme.palette.text.secondary },
      }),
    },
  },
  MuiTooltip: { styleOverrides: { tooltip: { backgroundColor: grey[900], color: '#fff' } } },
};

export const lightTheme: RaThemeOptions = {
  ...defaultLightTheme,
  palette: { ...defaultLightTheme.palette, primary: blue, secondary: blue, error: { main: '#c62828' } },
  components: {
    ...defaultLightTheme.components,
    ...readable,
    RaToolbar: { styleOverrides: { root: { backgroundColor: grey[100] } } },
  },
};

export const darkTheme: RaThemeOptions = {
  ...defaultDarkTheme,
  palette: { ...defaultDarkTheme.palette, error: { main: '#ef9a9a' } },
  components: { ...defaultDarkTheme.components, ...readable },
};
