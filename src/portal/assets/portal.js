// Progressive enhancement only: every page works without this script.
(() => {
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const input = document.querySelector(button.getAttribute('data-copy'));
      if (!input) return;
      // an input's value, or a code block's text (the snippets)
      const text = 'value' in input ? input.value : input.textContent;
      if (typeof input.select === 'function') input.select();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        if (typeof input.select === 'function') document.execCommand('copy');
      }
      button.textContent = 'Copied';
    });
  }
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  }
  for (const select of document.querySelectorAll('select[data-autosubmit]')) {
    select.addEventListener('change', () => select.form.submit());
  }
  for (const input of document.querySelectorAll('input[type=file][data-fill]')) {
    input.addEventListener('change', async () => {
      const target = document.querySelector(input.getAttribute('data-fill'));
      const file = input.files?.[0];
      if (target && file) target.value = await file.text();
    });
  }
  // After a failed submit, move focus to the summary of problems so keyboard and screen reader users hear it.
  const problem = document.querySelector('[data-autofocus], .error[role=alert]');
  if (problem) {
    problem.setAttribute('tabindex', '-1');
    problem.focus();
  }
})();
